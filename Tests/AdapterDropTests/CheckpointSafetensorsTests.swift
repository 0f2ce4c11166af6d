// Safetensors reader/writer: round trips for every dtype, the exact header layout, and one test per
// corruption case checking the precise typed error.
import Foundation
import Testing

@testable import AdapterDrop

@Suite("Checkpoint safetensors")
struct CheckpointSafetensorsTests {
    // MARK: Round trips

    @Test("F32/F64 round trip exactly; F16/BF16 round trip exactly on representable values",
          arguments: SafetensorsDType.allCases.filter(\.isFloatingPoint))
    func floatRoundTrip(dtype: SafetensorsDType) throws {
        let folder = try CheckpointTempFolder()
        // Multiples of 1/8 in [-16, 16) (at most 8 significant bits) and ±0, ±Inf: exact in every float dtype.
        var values: [Float] = (0..<24).map { Float($0 * 37 % 256 - 128) / 8 }
        values += [0, -0.0, .infinity, -.infinity, 2048, 0x1p-14]
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try writer.add("a.weight", shape: [5, 6], floats: values, as: dtype)
        try writer.add("scalar", shape: [], floats: [1.5], as: dtype)
        try writer.add("empty", shape: [0, 3], floats: [], as: dtype)
        let url = folder.file("model.safetensors")
        try writer.write(to: url)

        let file = try SafetensorsFile(url: url)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensorNames == ["a.weight", "empty", "scalar"])
        let info = try file.info("a.weight")
        #expect(info.dtype == dtype)
        #expect(info.shape == [5, 6])
        #expect(info.byteCount == 30 * dtype.itemSize)
        let back = try file.floats("a.weight")
        #expect(back.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(try file.floats("scalar") == [1.5])
        #expect(try file.info("scalar").shape == [])
        #expect(try file.floats("empty") == [])
        #expect(try file.info("empty").shape == [0, 3])
    }

    @Test("F16 and BF16 writes round to nearest even, matching the reference rounding")
    func halfRounding() throws {
        var rng = TestRNGLocal(seed: 7)
        var values: [Float] = (0..<2000).map { _ in rng.float() }
        // Ties and edge cases: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 in F16 (rounds to even: 1).
        values += [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519, 65520, 1e-8, 3e-8, 0x1p-25, 0x1.8p-25, -0x1p-24, .nan]
        let folder = try CheckpointTempFolder()
        var writer = SafetensorsWriter()
        try writer.add("h", shape: [values.count], floats: values, as: .f16)
        try writer.add("b", shape: [values.count], floats: values, as: .bf16)
        try writer.write(to: folder.file("r.safetensors"))
        let file = try SafetensorsFile(url: folder.file("r.safetensors"))
        let halves = try file.floats("h")
        let brains = try file.floats("b")
        #expect(halves[values.count - 10] == 1)
        #expect(halves[values.count - 9] == 1 + 4 * 0x1p-11)
        #expect(halves[values.count - 8] == 65504)  // below the overflow threshold
        #expect(halves[values.count - 7] == .infinity)  // 65520 rounds up to Inf
        #expect(halves[values.count - 4] == 0)  // exactly half the smallest subnormal: tie to even 0
        #expect(halves[values.count - 3] == 0x1p-24)
        #expect(halves.last!.isNaN && brains.last!.isNaN)
        #if !(os(macOS) && arch(x86_64))
        for (i, v) in values.enumerated() where !v.isNaN {
            #expect(halves[i] == Float(Float16(v)), "F16 of \(v)")
        }
        #endif
        for (i, v) in values.enumerated() where !v.isNaN {
            // BF16 reference: round-to-nearest-even on the upper 16 bits, computed in Double.
            let expected = referenceBFloat16(v)
            #expect(brains[i] == expected, "BF16 of \(v)")
        }
    }

    #if !(os(macOS) && arch(x86_64))
    @Test("Half decoding agrees with Float16 on all 65536 bit patterns, and encoding inverts it")
    func halfExhaustive() {
        var mismatches = 0
        for bits in 0...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let ours = floatFromHalfBits(bits)
            if reference.isNaN {
                if !ours.isNaN { mismatches += 1 }
                continue
            }
            if ours.bitPattern != reference.bitPattern { mismatches += 1 }
            if halfBitsFromFloat(ours) != bits { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
    #endif

    @Test("Integer tensors round trip as Int (I64 full range, I32)")
    func integerRoundTrip() throws {
        let folder = try CheckpointTempFolder()
        var writer = SafetensorsWriter()
        let big: [Int] = [0, 1, -1, Int(Int64.max), Int(Int64.min), 123_456_789_012]
        let small: [Int] = [0, 7, -7, Int(Int32.max), Int(Int32.min), 42]
        try writer.add("embeddings.position_ids", shape: [1, 6], integers: big)
        try writer.add("ids32", shape: [2, 3], integers: small, as: .i32)
        try writer.write(to: folder.file("i.safetensors"))
        let file = try SafetensorsFile(url: folder.file("i.safetensors"))
        #expect(try file.integers("embeddings.position_ids") == big)
        #expect(try file.integers("ids32") == small)
        #expect(try file.info("ids32").dtype == .i32)
        #expect(throws: SafetensorsError.dtypeMismatch(file: folder.file("i.safetensors").path, tensor: "ids32",
                                                       dtype: "I32", requested: "float")) {
            try file.floats("ids32")
        }
    }

    @Test("Header: sorted keys, __metadata__ first, space padding to 8 bytes, aligned data offsets")
    func headerLayout() throws {
        var writer = SafetensorsWriter(metadata: ["format": "pt", "a\"quote": "x\\y\n"])
        try writer.add("z.bias", shape: [3], floats: [1, 2, 3], as: .f16)
        try writer.add("b.weight", shape: [1], floats: [1])
        try writer.add("ids", shape: [1], integers: [5])
        let bytes = writer.serialized()
        let length = Int(bytes[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        #expect(length % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        #expect(header.hasPrefix("{\"__metadata__\":{\"a\\\"quote\":\"x\\\\y\\n\",\"format\":\"pt\"},\"b.weight\":"))
        #expect(header.count - trimmed.count == (8 - trimmed.utf8.count % 8) % 8)
        #expect(header.contains("\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}"))
        #expect(header.contains("\"b.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}"))
        #expect(header.contains("\"z.bias\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[12,18]}"))
        let names = ["b.weight", "ids", "z.bias"].map { header.range(of: "\"\($0)\"")!.lowerBound }
        #expect(names == names.sorted())
        #expect(bytes.count == 8 + length + 18)
        // Parse it back through the reader's own validation (quotes and escapes in metadata).
        let folder = try CheckpointTempFolder()
        let file = try SafetensorsFile(url: try folder.write("h.safetensors", bytes))
        #expect(file.metadata == ["format": "pt", "a\"quote": "x\\y\n"])
        #expect(try file.info("z.bias").dataOffsets == 12..<18)
    }

    @Test("Reads files written by the Python reference (safetensors 0.8.0), if the fixture is present")
    func readsReferenceFixture() throws {
        let url = checkpointFixturesFolder().appendingPathComponent("reference-dtypes.safetensors")
        try #require(FileManager.default.fileExists(atPath: url.path), "run Tests/Fixtures/checkpoint/make_reference_fixture.py")
        let file = try SafetensorsFile(url: url)
        #expect(file.metadata["format"] == "np")
        // The script stores 0, 0.5, 1, ... (i / 2) for floats and i - 3 for integers.
        for dtype in ["F32", "F16", "BF16", "F64"] {
            let values = try file.floats(dtype.lowercased())
            #expect(values == (0..<6).map { Float($0) / 2 }, "\(dtype)")
            #expect(try file.info(dtype.lowercased()).shape == [2, 3])
        }
        for dtype in ["I64", "I32"] {
            #expect(try file.integers(dtype.lowercased()) == (0..<6).map { $0 - 3 }, "\(dtype)")
        }
    }

    // MARK: NaN / Inf

    @Test("Non-finite weights are reported per tensor and rejected on request")
    func nonFinite() throws {
        let folder = try CheckpointTempFolder()
        var writer = SafetensorsWriter()
        try writer.add("clean", shape: [3], floats: [1, 2, 3])
        try writer.add("nan", shape: [4], floats: [1, .nan, .nan, 2], as: .bf16)
        try writer.add("inf", shape: [2], floats: [.infinity, 1e30], as: .f16)  // 1e30 overflows F16 too
        try writer.add("mixed", shape: [3], floats: [-.infinity, .nan, 0], as: .f64)
        try writer.add("ids", shape: [1], integers: [1])
        let url = folder.file("n.safetensors")
        try writer.write(to: url)

        let file = try SafetensorsFile(url: url)
        #expect(file.nonFiniteTensors() == [
            NonFiniteReport(tensor: "inf", nanCount: 0, infinityCount: 2),
            NonFiniteReport(tensor: "mixed", nanCount: 1, infinityCount: 1),
            NonFiniteReport(tensor: "nan", nanCount: 2, infinityCount: 0),
        ])
        #expect(try file.floats("nan")[1].isNaN)  // default: read as is

        let strict = try SafetensorsFile(url: url, options: .init(rejectNonFinite: true))
        #expect(try strict.floats("clean") == [1, 2, 3])
        #expect(throws: SafetensorsError.nonFiniteValues(file: url.path, tensor: "nan", nanCount: 2, infinityCount: 0)) {
            try strict.floats("nan")
        }
        #expect(throws: SafetensorsError.nonFiniteValues(file: url.path, tensor: "mixed", nanCount: 1, infinityCount: 1)) {
            try strict.floats("mixed")
        }
    }

    @Test("F64 values beyond the fp32 range are rejected as Inf after conversion")
    func f64Overflow() throws {
        let data: [UInt8] = [1e300, 1.0].flatMap { (v: Double) in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let folder = try CheckpointTempFolder()
        let url = try folder.write("big.safetensors", safetensorsImage(
            header: #"{"d":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#, data: data))
        #expect(try SafetensorsFile(url: url).floats("d") == [.infinity, 1])
        #expect(try SafetensorsFile(url: url).nonFiniteTensors().isEmpty)  // finite as stored
        #expect(throws: SafetensorsError.nonFiniteValues(file: url.path, tensor: "d", nanCount: 0, infinityCount: 1)) {
            try SafetensorsFile(url: url, options: .init(rejectNonFinite: true)).floats("d")
        }
    }

    // MARK: Corrupt files (each builds its bytes in code)

    /// Writes `bytes`, opens them, and expects exactly `error(path)`.
    private func expectOpenFails(
        _ bytes: [UInt8], _ error: (String) -> SafetensorsError, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let folder = try CheckpointTempFolder()
        let url = try folder.write("bad.safetensors", bytes)
        #expect(throws: error(url.path), sourceLocation: sourceLocation) { try SafetensorsFile(url: url) }
    }

    @Test("Empty file and files shorter than 8 bytes")
    func tooSmall() throws {
        try expectOpenFails([]) { .fileTooSmall(file: $0, size: 0) }
        try expectOpenFails([1, 0, 0, 0, 0]) { .fileTooSmall(file: $0, size: 5) }
    }

    @Test("Header length past the end of the file")
    func headerPastEnd() throws {
        let image = safetensorsImage(header: "{}", claimedHeaderLength: 1000)
        try expectOpenFails(image) { .headerLengthPastEnd(file: $0, headerLength: 1000, fileSize: 10) }
    }

    @Test("Header length above the 100 MB limit")
    func headerTooLarge() throws {
        let image = safetensorsImage(header: "{}", claimedHeaderLength: 100_000_001)
        try expectOpenFails(image) { .headerTooLarge(file: $0, headerLength: 100_000_001, limit: 100_000_000) }
        let huge = safetensorsImage(header: "{}", claimedHeaderLength: UInt64.max)
        try expectOpenFails(huge) { .headerTooLarge(file: $0, headerLength: UInt64.max, limit: 100_000_000) }
    }

    @Test("A 100 GB tensor claimed by a small file")
    func hugeTensorClaim() throws {
        let size = 100_000_000_000
        let outside = #"{"w":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,\#(size)]}}"#
        try expectOpenFails(safetensorsImage(header: outside, data: [0, 0, 0, 0])) {
            .tensorOutOfBounds(file: $0, tensor: "w", begin: 0, end: size, dataSectionSize: 4)
        }
        let lying = #"{"w":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,4]}}"#
        try expectOpenFails(safetensorsImage(header: lying, data: [0, 0, 0, 0])) {
            .shapeMismatch(file: $0, tensor: "w", expectedBytes: size, actualBytes: 4)
        }
    }

    @Test("Shape whose byte count overflows, negative dimension, non-integer dimension")
    func badShapes() throws {
        let overflow = #"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
        try expectOpenFails(safetensorsImage(header: overflow, data: Array(repeating: 0, count: 8))) {
            .shapeOverflow(file: $0, tensor: "w", shape: [4_294_967_296, 4_294_967_296])
        }
        let negative = #"{"w":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}"#
        try expectOpenFails(safetensorsImage(header: negative, data: Array(repeating: 0, count: 16))) {
            .negativeDimension(file: $0, tensor: "w", shape: [-1, -4])
        }
        let fractional = #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#
        try expectOpenFails(safetensorsImage(header: fractional, data: [0, 0, 0, 0])) {
            .invalidTensorEntry(file: $0, tensor: "w", reason: "\"shape\" holds a non-integer or too large value")
        }
    }

    @Test("Overlapping, reversed and out-of-range data_offsets")
    func badOffsets() throws {
        let data = float32Bytes([1, 2, 3])
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        try expectOpenFails(safetensorsImage(header: overlap, data: data)) {
            .overlappingTensors(file: $0, first: "a", second: "b")
        }
        // A long tensor overlapping a later one that is not its direct successor.
        let nested = #"{"long":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"x":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        try expectOpenFails(safetensorsImage(header: nested, data: data)) {
            .overlappingTensors(file: $0, first: "long", second: "y")
        }
        let reversed = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#
        try expectOpenFails(safetensorsImage(header: reversed, data: data)) {
            .invalidDataOffsets(file: $0, tensor: "a", begin: 8, end: 4)
        }
        let outside = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        try expectOpenFails(safetensorsImage(header: outside, data: data)) {
            .tensorOutOfBounds(file: $0, tensor: "a", begin: 8, end: 16, dataSectionSize: 12)
        }
        let negative = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#
        try expectOpenFails(safetensorsImage(header: negative, data: data)) {
            .invalidTensorEntry(file: $0, tensor: "a", reason: "\"data_offsets\" must be two non-negative integers that fit in Int")
        }
        let beyondInt = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}"#
        try expectOpenFails(safetensorsImage(header: beyondInt, data: data)) {
            .invalidTensorEntry(file: $0, tensor: "a", reason: "\"data_offsets\" must be two non-negative integers that fit in Int")
        }
    }

    @Test("Unknown and unsupported dtypes", arguments: ["F8_E4M3", "U8", "Q4_0", "f32"])
    func unknownDType(dtype: String) throws {
        let header = #"{"w":{"dtype":"\#(dtype)","shape":[1],"data_offsets":[0,1]}}"#
        try expectOpenFails(safetensorsImage(header: header, data: [0])) {
            .unsupportedDType(file: $0, tensor: "w", dtype: dtype)
        }
    }

    @Test("Shape × item size differs from the byte range")
    func shapeBytesMismatch() throws {
        let header = #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#
        try expectOpenFails(safetensorsImage(header: header, data: Array(repeating: 0, count: 24))) {
            .shapeMismatch(file: $0, tensor: "w", expectedBytes: 24, actualBytes: 20)
        }
        #expect(SafetensorsError.shapeMismatch(file: "m.safetensors", tensor: "w", expectedBytes: 24, actualBytes: 20)
            .description == "m.safetensors: tensor 'w': shape and dtype need 24 bytes but data_offsets cover 20 bytes")
    }

    @Test("Truncated file: a valid file cut short")
    func truncated() throws {
        var writer = SafetensorsWriter()
        try writer.add("w", shape: [4], floats: [1, 2, 3, 4])
        let full = writer.serialized()
        let headerLength = full.count - 8 - 16
        try expectOpenFails(Array(full.dropLast(3))) {
            .tensorOutOfBounds(file: $0, tensor: "w", begin: 0, end: 16, dataSectionSize: 13)
        }
        // Cut inside the header: the length prefix now points past the end.
        try expectOpenFails(Array(full.prefix(20))) {
            .headerLengthPastEnd(file: $0, headerLength: UInt64(headerLength), fileSize: 20)
        }
    }

    @Test("Invalid UTF-8 in the header")
    func invalidUTF8() throws {
        var header = Array(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"x":""}"#.utf8)
        header.insert(0xC3, at: header.count - 3)  // a lead byte without continuation
        try expectOpenFails(safetensorsImage(headerBytes: header)) { .invalidHeaderEncoding(file: $0) }
        try expectOpenFails(safetensorsImage(headerBytes: [0x7B, 0xFF, 0x7D])) { .invalidHeaderEncoding(file: $0) }
    }

    @Test("Invalid JSON headers", arguments: [
        (#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#, "unexpected end of input"),
        (#"{"w" {"#, "expected ':'"),
        ("{\"a\":\"x\ny\"}", "unescaped control character in string"),
        (#"{"a":1,"a":2}"#, "duplicate key \"a\""),
        (#"{"a":"\ud800"}"#, "lone high surrogate in \\u escape"),
        (#"{"a":01}"#, "expected ',' or '}'"),
        (#"{} {}"#, "unexpected data after the JSON value"),
        ("", "unexpected end of input"),
    ])
    func invalidJSON(header: String, reason: String) throws {
        let folder = try CheckpointTempFolder()
        let url = try folder.write("bad.safetensors", safetensorsImage(header: header))
        do {
            _ = try SafetensorsFile(url: url)
            Issue.record("expected invalidHeaderJSON for \(header)")
        } catch let SafetensorsError.invalidHeaderJSON(file, gotReason, _) {
            #expect(file == url.path)
            #expect(gotReason == reason)
        }
    }

    @Test("Deeply nested JSON is rejected without recursing (1,000,000 levels)")
    func deeplyNested() throws {
        let depth = 1_000_000
        let header = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let folder = try CheckpointTempFolder()
        let url = try folder.write("deep.safetensors", safetensorsImage(header: header))
        #expect(throws: SafetensorsError.invalidHeaderJSON(file: url.path, reason: "nested deeper than 16 levels", offset: 16)) {
            try SafetensorsFile(url: url)
        }
        let objects = #"{"__metadata__":"# + String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: "}", count: 41)
        let url2 = try folder.write("deep2.safetensors", safetensorsImage(header: objects))
        #expect(throws: (any Error).self) { try SafetensorsFile(url: url2) }
    }

    @Test("Valid JSON that is not a safetensors header")
    func wrongSchema() throws {
        try expectOpenFails(safetensorsImage(header: "[1,2]")) {
            .invalidHeader(file: $0, reason: "the header is a JSON array, not an object")
        }
        try expectOpenFails(safetensorsImage(header: #"{"__metadata__":{"k":1}}"#)) {
            .invalidHeader(file: $0, reason: "__metadata__[\"k\"] is a number, not a string")
        }
        try expectOpenFails(safetensorsImage(header: #"{"w":[1]}"#)) {
            .invalidTensorEntry(file: $0, tensor: "w", reason: "entry is a array, not an object")
        }
        try expectOpenFails(safetensorsImage(header: #"{"w":{"dtype":"F32","shape":[0]}}"#)) {
            .invalidTensorEntry(file: $0, tensor: "w", reason: "missing \"data_offsets\"")
        }
        try expectOpenFails(safetensorsImage(header: #"{"w":{"shape":[0],"data_offsets":[0,0]}}"#)) {
            .invalidTensorEntry(file: $0, tensor: "w", reason: "missing \"dtype\"")
        }
    }

    @Test("Gaps and trailing bytes are accepted; padding spaces after the JSON are accepted")
    func lenientLayout() throws {
        let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    "#
        let folder = try CheckpointTempFolder()
        let url = try folder.write("gap.safetensors", safetensorsImage(header: header, data: float32Bytes([1, 9, 2, 7])))
        let file = try SafetensorsFile(url: url)
        #expect(try file.floats("a") == [1])
        #expect(try file.floats("b") == [2])
        #expect(file.dataSectionSize == 16)
    }

    @Test("Missing file, directory, unknown tensor name")
    func lookupErrors() throws {
        let folder = try CheckpointTempFolder()
        let missing = folder.file("none.safetensors")
        #expect(throws: SafetensorsError.ioFailure(file: missing.path, operation: "open", errno: ENOENT)) {
            try SafetensorsFile(url: missing)
        }
        #expect(throws: SafetensorsError.notARegularFile(file: folder.url.path)) { try SafetensorsFile(url: folder.url) }
        let url = try folder.write("ok.safetensors", safetensorsImage(header: "{}"))
        let file = try SafetensorsFile(url: url)
        #expect(file.tensors.isEmpty)
        #expect(throws: SafetensorsError.tensorNotFound(file: url.path, tensor: "w")) { try file.floats("w") }
    }

    @Test("2000 mutated files either load (and every tensor reads) or throw SafetensorsError — never trap")
    func mutationFuzz() throws {
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try writer.add("a", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        try writer.add("b", shape: [3], floats: [1, .nan, 3], as: .bf16)
        try writer.add("c", shape: [2], integers: [7, -7], as: .i32)
        try writer.add("d", shape: [], floats: [0.5], as: .f64)
        let original = writer.serialized()
        let folder = try CheckpointTempFolder()
        var rng = TestRNGLocal(seed: 2024)
        var loaded = 0
        var rejected = 0
        let digits = Array("0123456789-[]{}\",:.e ".utf8)
        for iteration in 0..<2000 {
            var bytes = original
            switch iteration % 3 {
            case 0:  // flip a few bytes anywhere
                for _ in 0..<Int(1 + rng.next() % 3) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:  // replace a header byte by a JSON-significant character
                let position = 8 + Int(rng.next() % UInt64(bytes.count - 8 - 40))
                bytes[position] = digits[Int(rng.next() % UInt64(digits.count))]
            default:  // truncate
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            }
            // Every 50th image goes through a real file and mmap; the rest are validated in memory (disk writes
            // on a shared machine take up to 15 ms each).
            let url = iteration % 50 == 0 ? try folder.write("fuzz-\(iteration).safetensors", bytes) : folder.file("memory")
            do {
                let options = SafetensorsFile.Options(rejectNonFinite: iteration % 2 == 0)
                let file = iteration % 50 == 0
                    ? try SafetensorsFile(url: url, options: options) : try SafetensorsFile(bytes: bytes, url: url, options: options)
                for name in file.tensorNames {
                    let info = try file.info(name)
                    do {
                        if info.dtype.isFloatingPoint { _ = try file.floats(name) } else { _ = try file.integers(name) }
                    } catch is SafetensorsError {}
                }
                _ = file.nonFiniteTensors()
                loaded += 1
            } catch is SafetensorsError {
                rejected += 1
            }
        }
        #expect(loaded + rejected == 2000)
        #expect(loaded > 0 && rejected > 0)  // both paths were exercised
    }

    // MARK: Writer errors and atomicity

    @Test("Writer rejects duplicate names, reserved names, count mismatches, out-of-range I32")
    func writerValidation() throws {
        var writer = SafetensorsWriter()
        try writer.add("w", shape: [2], floats: [1, 2])
        #expect(throws: SafetensorsWriterError.duplicateTensor("w")) { try writer.add("w", shape: [1], floats: [1]) }
        #expect(throws: SafetensorsWriterError.invalidName("__metadata__")) {
            try writer.add("__metadata__", shape: [1], floats: [1])
        }
        #expect(throws: SafetensorsWriterError.invalidName("")) { try writer.add("", shape: [1], floats: [1]) }
        #expect(throws: SafetensorsWriterError.elementCountMismatch(tensor: "x", shape: [2, 2], count: 3)) {
            try writer.add("x", shape: [2, 2], floats: [1, 2, 3])
        }
        #expect(throws: SafetensorsWriterError.elementCountMismatch(tensor: "x", shape: [-1], count: 0)) {
            try writer.add("x", shape: [-1], floats: [])
        }
        #expect(throws: SafetensorsWriterError.integerOutOfRange(tensor: "i", value: 1 << 40, dtype: .i32)) {
            try writer.add("i", shape: [1], integers: [1 << 40], as: .i32)
        }
        #expect(throws: SafetensorsWriterError.dtypeMismatch(tensor: "i", dtype: .f32, given: "integer")) {
            try writer.add("i", shape: [1], integers: [1], as: .f32)
        }
        #expect(throws: SafetensorsWriterError.dtypeMismatch(tensor: "f", dtype: .i64, given: "float")) {
            try writer.add("f", shape: [1], floats: [1], as: .i64)
        }
        #expect(writer.tensorNames == ["w"])
    }

    @Test("A failing write leaves the old file intact and no temporary file behind")
    func atomicFailure() throws {
        let folder = try CheckpointTempFolder()
        let url = folder.file("model.safetensors")
        var old = SafetensorsWriter()
        try old.add("old", shape: [1], floats: [42])
        try old.write(to: url)
        let oldBytes = try Data(contentsOf: url)

        var writer = SafetensorsWriter()
        try writer.add("new", shape: [1000], floats: Array(repeating: 1, count: 1000))
        for failAfter in [0, 5, 100, 2000] {
            writer.failAfterBytesForTesting = failAfter
            #expect(throws: SafetensorsWriterError.ioFailure(file: url.path, operation: "write", errno: EIO)) {
                try writer.write(to: url)
            }
            #expect(try Data(contentsOf: url) == oldBytes)
            #expect(try folder.listing() == ["model.safetensors"])
        }
        #expect(try SafetensorsFile(url: url).floats("old") == [42])

        // A real failure from the file system: the destination is a non-empty directory, so rename fails.
        let blocked = folder.file("blocked.safetensors")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("inside"), withIntermediateDirectories: true)
        writer.failAfterBytesForTesting = nil
        do {
            try writer.write(to: blocked)
            Issue.record("writing over a directory should fail")
        } catch let SafetensorsWriterError.ioFailure(file, operation, _) {
            #expect(file == blocked.path)
            #expect(operation == "rename")
        }
        #expect(try folder.listing() == ["blocked.safetensors", "model.safetensors"])

        // A folder that does not exist: open of the temporary file fails, nothing is created.
        let nowhere = folder.file("missing/model.safetensors")
        #expect(throws: SafetensorsWriterError.ioFailure(file: nowhere.path, operation: "open temporary file", errno: ENOENT)) {
            try writer.write(to: nowhere)
        }

        // And a successful write replaces the old file.
        try writer.write(to: url)
        #expect(try SafetensorsFile(url: url).tensorNames == ["new"])
        #expect(try folder.listing() == ["blocked.safetensors", "model.safetensors"])
    }
}

/// BF16 rounding reference computed independently of the implementation: pick the nearer of the two
/// neighbouring BF16 values in Double, ties to the one with an even last bit.
private func referenceBFloat16(_ value: Float) -> Float {
    let bits = value.bitPattern
    let down = Float(bitPattern: bits & 0xFFFF_0000)
    let up = Float(bitPattern: (bits & 0xFFFF_0000) &+ 0x1_0000)
    let dDown = abs(Double(value) - Double(down))
    let dUp = abs(Double(value) - Double(up))
    if dDown < dUp { return down }
    if dUp < dDown { return up }
    return (bits >> 16) & 1 == 0 ? down : up
}

/// Local generator producing floats over many binades (exercises F16 subnormals and overflow).
private struct TestRNGLocal {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Sign × mantissa × 2^e with e uniform in [-30, 20].
    mutating func float() -> Float {
        let mantissa = Float(next() >> 40) / Float(1 << 24) + 1
        let exponent = Int(next() % 51) - 30
        let sign: Float = next() & 1 == 0 ? 1 : -1
        return sign * mantissa * Float(sign: .plus, exponent: exponent, significand: 1)
    }
}

/// The Python interpreter named by `ADAPTERDROP_PYTHON` (with safetensors and numpy), if any.
let referencePython = ProcessInfo.processInfo.environment["ADAPTERDROP_PYTHON"]

@Suite("Checkpoint safetensors: Python reference parity")
struct CheckpointSafetensorsPythonTests {
    @Test("Python safetensors loads our output (every dtype, metadata, scalars, empty tensors)",
          .enabled(if: referencePython != nil, "set ADAPTERDROP_PYTHON to a python with safetensors + numpy"))
    func pythonReferenceLoadsOutput() throws {
        let folder = try CheckpointTempFolder()
        let url = folder.file("swift-written.safetensors")
        var writer = SafetensorsWriter(metadata: ["format": "pt", "written_by": "AdapterDrop \u{2713}"])
        let values: [Float] = [0.1, -2.5, 3e-5, 1000.25, .nan, .infinity]
        for dtype in SafetensorsDType.allCases where dtype.isFloatingPoint {
            try writer.add("w_\(dtype.rawValue)", shape: [2, 3], floats: values, as: dtype)
        }
        try writer.add("ids_I64", shape: [3], integers: [-1, 0, 1 << 40])
        try writer.add("ids_I32", shape: [1, 3], integers: [-7, 0, 7], as: .i32)
        try writer.add("scalar", shape: [], floats: [2])
        try writer.add("empty", shape: [4, 0], floats: [])
        try writer.write(to: url)

        let script = checkpointFixturesFolder().appendingPathComponent("read_with_reference.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: referencePython!)
        process.arguments = [script.path, url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "reference reader failed")

        struct Dump: Decodable {
            struct Entry: Decodable {
                var dtype: String
                var shape: [Int]
                var values: [Value]
            }
            enum Value: Decodable, Equatable {
                case number(Double), text(String)
                init(from decoder: any Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
                }
            }
            var metadata: [String: String]
            var tensors: [String: Entry]
        }
        let dump = try JSONDecoder().decode(Dump.self, from: output)
        #expect(dump.metadata == writer.metadata)
        #expect(Set(dump.tensors.keys) == Set(writer.tensorNames))
        let ours = try SafetensorsFile(url: url)
        for (name, entry) in dump.tensors {
            let info = try ours.info(name)
            #expect(entry.dtype == info.dtype.rawValue, "\(name)")
            #expect(entry.shape == info.shape, "\(name)")
            let expected: [Dump.Value]
            if info.dtype.isFloatingPoint {
                // Python widens F16/BF16 exactly, so its values must equal our decoded fp32 bit for bit.
                // F32/F64 hold `values` exactly; for F16/BF16 the rounding itself is checked in `halfRounding`.
                let decoded = name == "w_F32" || name == "w_F64" ? values : try ours.floats(name)
                expected = decoded.map {
                    $0.isNaN ? .text("nan") : $0.isInfinite ? .text($0 > 0 ? "inf" : "-inf") : .number(Double($0))
                }
            } else {
                expected = try ours.integers(name).map { .number(Double($0)) }
            }
            #expect(entry.values == expected, "\(name)")
        }
    }
}
