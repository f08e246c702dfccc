//! Canonical encoding: a version byte, then borsh, decoded under explicit bounds.
//!
//! Everything that crosses a process boundary is decoded with [`decode`], which refuses input
//! longer than the caller's limit before reading it, refuses unknown versions and trailing bytes,
//! and relies on [`BoundedVec`] and [`BoundedString`] to refuse any length prefix beyond the
//! type's own bound before allocating for it.

use std::io::{self, Read, Write};
use std::ops::Deref;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The encoding version this build writes and reads.
pub const VERSION: u8 = 1;

/// No transaction may ever exceed this, whatever genesis says.
pub const TX_BYTES_HARD_MAX: u32 = 1024 * 1024;
/// No block may ever exceed this, whatever genesis says.
pub const BLOCK_BYTES_HARD_MAX: u32 = 64 * 1024 * 1024;

/// `VERSION || borsh(value)`.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Writing into a Vec cannot fail.
    let _ = borsh::to_writer(&mut out, value);
    out
}

/// Decodes `VERSION || borsh(value)`, refusing more than `max_len` bytes, another version, any
/// length prefix over its bound, and trailing bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max_len: usize) -> Result<T, Error> {
    if bytes.len() > max_len {
        return Err(Error::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let (&version, body) = bytes
        .split_first()
        .ok_or(Error::Malformed("empty input".into()))?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    borsh::from_slice(body).map_err(|e| Error::Malformed(e.to_string()))
}

fn read_len<R: Read>(reader: &mut R, max: usize, what: &str) -> io::Result<usize> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} of length {len} exceeds the bound {max}"),
        ));
    }
    Ok(len)
}

/// A vector whose decoded length can never exceed `MAX`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// From JSON too, a list longer than its bound is refused.
impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = <Vec<T> as Deserialize>::deserialize(d)?;
        Self::new(items).map_err(serde::de::Error::custom)
    }
}

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    pub fn new(items: Vec<T>) -> Result<Self, Error> {
        if items.len() > MAX {
            return Err(Error::TooMany {
                len: items.len(),
                max: MAX,
            });
        }
        Ok(Self(items))
    }

    pub fn empty() -> Self {
        Self(Vec::new())
    }

    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'a, T, const MAX: usize> IntoIterator for &'a BoundedVec<T, MAX> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: BorshSerialize, const MAX: usize> BorshSerialize for BoundedVec<T, MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        BorshSerialize::serialize(&self.0, writer)
    }
}

impl<T: BorshDeserialize, const MAX: usize> BorshDeserialize for BoundedVec<T, MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len(reader, MAX, "list")?;
        // Capacity is bounded by MAX, never by what the input claims beyond it.
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(Self(items))
    }
}

/// A UTF-8 string whose decoded length in bytes can never exceed `MAX`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct BoundedString<const MAX: usize>(String);

/// From JSON too, a string longer than its bound is refused.
impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> BoundedString<MAX> {
    pub fn new(s: impl Into<String>) -> Result<Self, Error> {
        let s = s.into();
        if s.len() > MAX {
            return Err(Error::TooLarge {
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> BorshSerialize for BoundedString<MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        BorshSerialize::serialize(&self.0, writer)
    }
}

impl<const MAX: usize> BorshDeserialize for BoundedString<MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len(reader, MAX, "string")?;
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        String::from_utf8(buf)
            .map(Self)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "string is not utf-8"))
    }
}

/// Bytes with at most `MAX` of them, on the wire and in JSON (as hex): an over-long encoding is
/// refused before it is read whole.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct BoundedBytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> BoundedBytes<MAX> {
    pub fn new(bytes: Vec<u8>) -> Result<Self, Error> {
        if bytes.len() > MAX {
            return Err(Error::TooLarge {
                len: bytes.len(),
                max: MAX,
            });
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> BorshSerialize for BoundedBytes<MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        BorshSerialize::serialize(&self.0, writer)
    }
}

impl<const MAX: usize> BorshDeserialize for BoundedBytes<MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len(reader, MAX, "bytes")?;
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        Ok(Self(buf))
    }
}

impl<const MAX: usize> Serialize for BoundedBytes<MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedBytes<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        if s.len() > MAX.saturating_mul(2) {
            return Err(serde::de::Error::custom(format!(
                "more than {MAX} bytes of hex"
            )));
        }
        hex::decode(&s).map(Self).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_bounded_like_the_wire() {
        assert!(serde_json::from_str::<BoundedVec<u8, 2>>("[1,2]").is_ok());
        assert!(serde_json::from_str::<BoundedVec<u8, 2>>("[1,2,3]").is_err());
        assert!(serde_json::from_str::<BoundedString<2>>("\"ab\"").is_ok());
        assert!(serde_json::from_str::<BoundedString<2>>("\"abc\"").is_err());
        let b: BoundedBytes<2> = serde_json::from_str("\"0102\"").unwrap();
        assert_eq!(b.as_bytes(), &[1, 2]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"0102\"");
        assert!(serde_json::from_str::<BoundedBytes<2>>("\"010203\"").is_err());
        assert!(decode::<BoundedBytes<2>>(&encode(&vec![1u8, 2, 3]), 64).is_err());
        assert_eq!(
            decode::<BoundedBytes<3>>(&encode(&vec![1u8, 2, 3]), 64).unwrap(),
            BoundedBytes::new(vec![1, 2, 3]).unwrap()
        );
    }

    #[test]
    fn decode_rejects_trailing_bytes_wrong_version_and_oversize() {
        let bytes = encode(&7u32);
        assert_eq!(decode::<u32>(&bytes, 64).unwrap(), 7);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<u32>(&trailing, 64),
            Err(Error::Malformed(_))
        ));
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(decode::<u32>(&wrong, 64), Err(Error::UnsupportedVersion(9)));
        assert_eq!(
            decode::<u32>(&bytes, 2),
            Err(Error::TooLarge { len: 5, max: 2 })
        );
        assert!(decode::<u32>(&[], 64).is_err());
    }

    #[test]
    fn bounded_vec_refuses_a_length_prefix_over_its_bound_before_allocating() {
        let ok = encode(&BoundedVec::<u8, 4>::new(vec![1, 2, 3]).unwrap());
        assert_eq!(decode::<BoundedVec<u8, 4>>(&ok, 64).unwrap().len(), 3);
        // A claimed length of four billion must fail at once, not try to allocate.
        let mut huge = vec![VERSION];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode::<BoundedVec<u8, 4>>(&huge, 64),
            Err(Error::Malformed(_))
        ));
        assert!(BoundedVec::<u8, 2>::new(vec![1, 2, 3]).is_err());
    }

    #[test]
    fn bounded_string_refuses_long_and_non_utf8() {
        let s = encode(&BoundedString::<8>::new("ETREAT").unwrap());
        assert_eq!(
            decode::<BoundedString<8>>(&s, 64).unwrap().as_str(),
            "ETREAT"
        );
        assert!(decode::<BoundedString<3>>(&s, 64).is_err());
        let mut bad = vec![VERSION];
        bad.extend_from_slice(&2u32.to_le_bytes());
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode::<BoundedString<8>>(&bad, 64).is_err());
    }
}
