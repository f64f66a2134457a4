//! The byte reader every op interpreter parses its input with: big-endian numbers, missing
//! bytes read as zero (so every input is a valid op sequence).

pub struct Bytes<'a>(pub &'a [u8]);

// Each interpreter uses the widths it needs.
#[allow(dead_code)]
impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }

    pub fn u32(&mut self) -> u32 {
        (0..4).fold(0, |acc, _| acc << 8 | u32::from(self.u8()))
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.u8()))
    }
}
