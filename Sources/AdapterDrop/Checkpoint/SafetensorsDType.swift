// Element types of safetensors tensors and the bit-exact conversions between them and fp32.
import AdapterCore

/// The element types this package reads and writes, spelled as in the safetensors header.
///
/// Float types convert to fp32 when a weight is read; integer types are read as `Int`.
/// All multi-byte values are little-endian in the file.
public enum SafetensorsDType: String, CaseIterable, Sendable, Codable {
    /// IEEE 754 binary32.
    case f32 = "F32"
    /// IEEE 754 binary16 (half precision).
    case f16 = "F16"
    /// bfloat16: the upper 16 bits of a binary32.
    case bf16 = "BF16"
    /// IEEE 754 binary64.
    case f64 = "F64"
    /// Two's-complement 64-bit integer.
    case i64 = "I64"
    /// Two's-complement 32-bit integer.
    case i32 = "I32"

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .f16, .bf16: return 2
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        }
    }

    /// True for F32, F16, BF16 and F64.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        case .i64, .i32: return false
        }
    }
}

// MARK: - Scalar conversions (exact, no dependence on the platform's Float16 support)

/// binary16 bits → Float. Exact for every input (fp32 represents every half value); NaN payloads keep
/// their top bits.
@inline(__always)
func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa · 2⁻²⁴, exact in fp32.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Float → binary16 bits, rounding to nearest, ties to even (as `Float16(x)` and PyTorch's `.half()`).
/// Values beyond the half range become ±Inf; NaN stays a (quiet) NaN.
@inline(__always)
func halfBitsFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    let mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF {
        return mantissa == 0 ? sign | 0x7C00 : sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
    }
    let halfExponent = exponent - 127 + 15
    if halfExponent >= 0x1F { return sign | 0x7C00 }
    if halfExponent <= 0 {
        // Result is a half subnormal (or zero): round the 24-bit significand shifted into units of 2⁻²⁴.
        if halfExponent < -10 { return sign }
        let significand = mantissa | 0x80_0000
        let shift = UInt32(14 - halfExponent)
        var result = significand >> shift
        let remainder = significand & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if remainder > halfway || (remainder == halfway && (result & 1) == 1) { result += 1 }
        return sign | UInt16(result)
    }
    var result = (UInt32(halfExponent) << 10) | (mantissa >> 13)
    let remainder = mantissa & 0x1FFF
    // A carry out of the mantissa correctly bumps the exponent (and overflows to Inf at the top).
    if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) { result += 1 }
    return sign | UInt16(result)
}

/// bfloat16 bits → Float (exact).
@inline(__always)
func floatFromBFloat16Bits(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

/// Float → bfloat16 bits, rounding to nearest, ties to even (as PyTorch's `.bfloat16()`); NaN stays a
/// quiet NaN.
@inline(__always)
func bfloat16BitsFromFloat(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

// MARK: - Buffer conversions

/// Decodes `count` little-endian elements of `dtype` at `source` (any alignment) into fp32.
/// Precondition: `dtype.isFloatingPoint`, `source.count >= count * dtype.itemSize`.
func decodeFloats(
    _ source: UnsafeRawBufferPointer, dtype: SafetensorsDType, into destination: UnsafeMutableBufferPointer<Float>
) {
    let count = destination.count
    require(source.count >= count * dtype.itemSize, "decodeFloats: \(source.count) bytes for \(count) \(dtype)")
    guard count > 0, let out = destination.baseAddress, let base = source.baseAddress else { return }
    switch dtype {
    case .f32:
        #if _endian(little)
        UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: count * 4)
        #else
        for i in 0..<count {
            out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
        #endif
    case .f16:
        for i in 0..<count {
            out[i] = floatFromHalfBits(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    case .bf16:
        for i in 0..<count {
            out[i] = floatFromBFloat16Bits(
                UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    case .f64:
        for i in 0..<count {
            out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        }
    case .i64, .i32:
        preconditionFailure("decodeFloats: \(dtype) is not a float dtype")
    }
}

/// Counts NaN and ±Inf elements of a float tensor without converting it (exponent bits all ones:
/// mantissa zero → Inf, else NaN). Plain loops per dtype so that debug builds stay usable on large checkpoints.
func countNonFinite(_ source: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int) -> (nan: Int, infinity: Int) {
    guard count > 0, let base = source.baseAddress else { return (0, 0) }
    require(source.count >= count * dtype.itemSize, "countNonFinite: \(source.count) bytes for \(count) \(dtype)")
    var nans = 0
    var infinities = 0
    switch dtype {
    case .f32:
        var exponentOnes = 0
        if Int(bitPattern: base) % 4 == 0 {
            let words = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt32.self), count: count)
            for word in words where UInt32(littleEndian: word) & 0x7F80_0000 == 0x7F80_0000 { exponentOnes += 1 }
        } else {
            for i in 0..<count {
                let word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                if word & 0x7F80_0000 == 0x7F80_0000 { exponentOnes += 1 }
            }
        }
        guard exponentOnes > 0 else { return (0, 0) }  // the common case: one cheap pass
        for i in 0..<count {
            let word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            if word & 0x7F80_0000 == 0x7F80_0000 {
                if word & 0x007F_FFFF == 0 { infinities += 1 } else { nans += 1 }
            }
        }
    case .f16, .bf16:
        let (exponentMask, mantissaMask): (UInt16, UInt16) = dtype == .f16 ? (0x7C00, 0x03FF) : (0x7F80, 0x007F)
        for i in 0..<count {
            let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            if bits & exponentMask == exponentMask {
                if bits & mantissaMask == 0 { infinities += 1 } else { nans += 1 }
            }
        }
    case .f64:
        for i in 0..<count {
            let bits = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            if bits & 0x7FF0_0000_0000_0000 == 0x7FF0_0000_0000_0000 {
                if bits & 0x000F_FFFF_FFFF_FFFF == 0 { infinities += 1 } else { nans += 1 }
            }
        }
    case .i64, .i32:
        break
    }
    return (nans, infinities)
}

/// Encodes fp32 values as little-endian `dtype` bytes (rounding to nearest-even for F16/BF16; F64 exact).
func encodeFloats(_ values: UnsafeBufferPointer<Float>, as dtype: SafetensorsDType) -> [UInt8] {
    let count = values.count
    guard count > 0 else { return [] }
    return [UInt8](unsafeUninitializedCapacity: count * dtype.itemSize) { buffer, initialized in
        let out = UnsafeMutableRawPointer(buffer.baseAddress!)
        switch dtype {
        case .f32:
            for i in 0..<count { out.storeBytes(of: values[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<count { out.storeBytes(of: halfBitsFromFloat(values[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: bfloat16BitsFromFloat(values[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .f64:
            for i in 0..<count { out.storeBytes(of: Double(values[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
        case .i64, .i32:
            preconditionFailure("encodeFloats: \(dtype) is not a float dtype")
        }
        initialized = count * dtype.itemSize
    }
}
