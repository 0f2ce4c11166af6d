import CKernels
import Testing

@Suite struct DispatchTests {
    @Test func referenceIsAlwaysSupported() {
        #expect(ck_isa_supported(CK_ISA_REF) == 1)
        #expect(String(cString: ck_isa_name(CK_ISA_REF)) == "ref")
    }

    @Test func forcingAnUnsupportedValueFails() {
        #expect(ck_isa_force(ck_isa(rawValue: 99)) == CK_ERR_UNSUPPORTED)
        #expect(String(cString: ck_status_string(CK_ERR_WORKSPACE)).contains("workspace"))
    }
}
