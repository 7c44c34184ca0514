//! Deterministic pseudo-random numbers: every value is a pure function of the seed and where
//! it is used, so a simulation can be recomputed for any sample period in any order.

/// SplitMix64's output function: a well-mixed 64-bit value for any input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit value for (seed, a, b, c).
pub(crate) fn bits(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ a) ^ b) ^ c)
}

/// A value in `[0, 1)` for (seed, a, b, c).
pub(crate) fn unit(seed: u64, a: u64, b: u64, c: u64) -> f64 {
    (bits(seed, a, b, c) >> 11) as f64 / (1u64 << 53) as f64
}

/// A value in `[0, bound)`.
pub(crate) fn below(seed: u64, a: u64, b: u64, bound: u64) -> u64 {
    bits(seed, a, b, 0) % bound.max(1)
}

/// `len` lowercase hex digits.
pub(crate) fn hex(seed: u64, a: u64, b: u64, len: usize) -> String {
    (0..len)
        .map(|i| {
            let digit = bits(seed, a, b, i as u64) % 16;
            char::from_digit(digit as u32, 16).unwrap_or('0')
        })
        .collect()
}
