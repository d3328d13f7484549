//! Where the harness's inputs come from: mostly mutations of the seed
//! corpus (valid and near-valid inputs reach deep into a parser, random
//! bytes rarely do), some fresh random bytes, and some strings of
//! dictionary tokens. Deterministic for a given seed, so that a failure
//! can be replayed with `ROOMCAST_FUZZ_SEED`.

/// SplitMix64: tiny, fast, and good enough to pick mutations; not for
/// anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens every target's mutations may insert: the characters that
/// validators treat specially, escapes, and numbers at the edges.
const COMMON_TOKENS: &[&str] = &[
    "\u{0}",
    "\u{7}",
    "\r",
    "\n",
    "\t",
    " ",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{ad}",
    "\u{200b}",
    "\u{200d}",
    "\u{202e}",
    "\u{2028}",
    "\u{2066}",
    "\u{3164}",
    "\u{fe0f}",
    "\u{feff}",
    "\u{fffd}",
    "\u{e0041}",
    "é",
    "👋",
    "你",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "\\u001b",
    "\\\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e999",
    "18446744073709551615",
    "18446744073709551616",
    "%",
    "%00",
    "%zz",
    "+",
    "&",
    "=",
    "/",
    "*",
    ".",
    "-",
    "_",
];

/// Makes inputs for one target.
#[derive(Debug)]
pub struct Mutator<'a> {
    rng: Rng,
    seeds: &'a [Vec<u8>],
    dictionary: &'a [&'a str],
    max_len: usize,
}

impl<'a> Mutator<'a> {
    pub fn new(seed: u64, seeds: &'a [Vec<u8>], dictionary: &'a [&'a str], max_len: usize) -> Self {
        Self { rng: Rng::new(seed), seeds, dictionary, max_len: max_len.max(1) }
    }

    /// The next input: 8 in 10 a seed mutated one to four times, else
    /// random bytes or a string of tokens.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut input = match self.rng.below(10) {
            0 => self.random_bytes(),
            1 => self.token_string(),
            _ if self.seeds.is_empty() => self.random_bytes(),
            _ => {
                let mut input = self.rng.pick(self.seeds).clone();
                for _ in 0..=self.rng.below(4) {
                    self.mutate(&mut input);
                }
                input
            }
        };
        input.truncate(self.max_len);
        input
    }

    fn random_bytes(&mut self) -> Vec<u8> {
        let len = self.rng.below(self.max_len.min(256) + 1);
        // Half printable ASCII: parsers of text get past their first byte.
        let printable = self.rng.below(2) == 0;
        (0..len)
            .map(|_| {
                let byte = self.rng.next_u64() as u8;
                if printable {
                    b' ' + byte % 95
                } else {
                    byte
                }
            })
            .collect()
    }

    fn token_string(&mut self) -> Vec<u8> {
        let mut input = Vec::new();
        for _ in 0..=self.rng.below(16) {
            input.extend_from_slice(self.token());
        }
        input
    }

    fn token(&mut self) -> &'a [u8] {
        let dictionary =
            if self.dictionary.is_empty() || self.rng.below(3) == 0 { COMMON_TOKENS } else { self.dictionary };
        self.rng.pick(dictionary).as_bytes()
    }

    /// A position in `0..=len`.
    fn position(&mut self, input: &[u8]) -> usize {
        self.rng.below(input.len() + 1)
    }

    /// A range of `input`, mostly short.
    fn range(&mut self, input: &[u8]) -> std::ops::Range<usize> {
        let start = self.rng.below(input.len());
        let cap = if self.rng.below(4) == 0 { input.len() } else { 8 };
        let longest = (input.len() - start).min(cap);
        start..start + 1 + self.rng.below(longest)
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        if input.is_empty() {
            let token = self.token();
            input.extend_from_slice(token);
            return;
        }
        match self.rng.below(9) {
            0 => {
                let at = self.rng.below(input.len());
                input[at] ^= 1 << self.rng.below(8);
            }
            1 => {
                let at = self.rng.below(input.len());
                input[at] = *self.rng.pick(&[0, b' ', b'"', b'\\', b'{', b'}', 0x7f, 0x80, 0xc3, 0xff, b'0', b'a']);
            }
            2 => {
                let at = self.position(input);
                let byte = self.rng.next_u64() as u8;
                input.insert(at, byte);
            }
            3 => {
                let range = self.range(input);
                input.drain(range);
            }
            4 => {
                // Repeats grow nesting and lengths past the limits.
                let range = self.range(input);
                let most = if self.rng.below(8) == 0 { 64 } else { 4 };
                let copy = input[range.clone()].repeat(1 + self.rng.below(most));
                input.splice(range.end..range.end, copy);
            }
            5 => {
                let at = self.position(input);
                let token = self.token();
                input.splice(at..at, token.iter().copied());
            }
            6 => {
                let range = self.range(input);
                let token = self.token();
                input.splice(range, token.iter().copied());
            }
            7 => {
                // Splice: this input's head, another seed's tail.
                let at = self.position(input);
                input.truncate(at);
                if !self.seeds.is_empty() {
                    let other = self.rng.pick(self.seeds);
                    let from = self.rng.below(other.len() + 1);
                    input.extend_from_slice(&other[from..]);
                }
            }
            _ => {
                let at = self.position(input);
                let c = char::from_u32(self.rng.next_u64() as u32 % 0x11_0000).unwrap_or('\u{fffd}');
                let mut utf8 = [0; 4];
                input.splice(at..at, c.encode_utf8(&mut utf8).bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let seeds = vec![b"{\"type\":\"ping\"}".to_vec()];
        let mut a = Mutator::new(7, &seeds, &[], 64);
        let mut b = Mutator::new(7, &seeds, &[], 64);
        for _ in 0..1000 {
            let input = a.next_input();
            assert!(input.len() <= 64);
            assert_eq!(input, b.next_input());
        }
    }
}
