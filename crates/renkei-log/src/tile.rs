//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>) hash tiles: their paths
//! `tile/<L>/<N>[.p/<W>]` and which stored hashes they hold.
//!
//! Tiles have height 8: the tile at level `L` and index `N` holds the hashes of the
//! `2^(8L)`-leaf perfect subtrees number `N·256 .. N·256 + W`, that is, node hashes at
//! Merkle level `8L` (level 0 tiles hold leaf hashes). A full tile has `W = 256` hashes and
//! no `.p/<W>` suffix. `N` is written in zero-padded 3-digit path elements, all but the last
//! prefixed with `x`: 1234067 is `x001/x234/067`.

use std::fmt;
use std::str::FromStr;

use crate::excerpt;
use crate::merkle::{HASH_SIZE, HashReader, MerkleError, stored_hash_index};

/// Tile height: each tile spans 8 levels of the tree.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const FULL_WIDTH: u16 = 1 << TILE_HEIGHT;
/// Highest tile level a path may name.
pub const MAX_LEVEL: u8 = 63;

/// What went wrong with a tile path or tile.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// The path is not a canonical hash tile path.
    #[error("tile path `{path}` is malformed: {reason}")]
    MalformedPath {
        /// The path (cut if long).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The level is above [`MAX_LEVEL`].
    #[error("tile level `{0}` is above 63")]
    InvalidLevel(u8),
    /// The width is not between 1 and 256.
    #[error("tile width `{0}` is not between 1 and 256")]
    InvalidWidth(u16),
    /// The tile's hashes lie beyond the largest supported tree, or reading them failed.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// A hash tile: level, index within the level, and width (256 for a full tile).
///
/// Parse one from a path with [`str::parse`]; [`fmt::Display`] writes the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

impl Tile {
    /// The tile at `level` and `index` with `width` hashes.
    ///
    /// # Errors
    /// [`TileError::InvalidLevel`] above level 63, [`TileError::InvalidWidth`] outside 1..=256.
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, TileError> {
        if level > MAX_LEVEL {
            return Err(TileError::InvalidLevel(level));
        }
        if width == 0 || width > FULL_WIDTH {
            return Err(TileError::InvalidWidth(width));
        }
        Ok(Tile {
            level,
            index,
            width,
        })
    }

    /// The tile level `L`.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The tile index `N` within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many hashes the tile holds, 1..=256.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile holds fewer than 256 hashes.
    pub fn is_partial(&self) -> bool {
        self.width < FULL_WIDTH
    }

    /// Whether the tree of `tree_size` leaves has every hash of this tile, so the tile can
    /// be served for it.
    pub fn is_within(&self, tree_size: u64) -> bool {
        let shift = TILE_HEIGHT * u32::from(self.level);
        let available = tree_size.checked_shr(shift).unwrap_or(0);
        u128::from(self.index) * u128::from(FULL_WIDTH) + u128::from(self.width)
            <= u128::from(available)
    }

    /// The stored-hash indexes (see [`crate::merkle`]) of the tile's hashes, in order.
    ///
    /// # Errors
    /// [`TileError::Merkle`] when the tile lies beyond the largest supported tree.
    pub fn stored_hash_indexes(&self) -> Result<Vec<u64>, TileError> {
        let level = u8::try_from(TILE_HEIGHT * u32::from(self.level))
            .map_err(|_| MerkleError::TooLarge(self.index))?;
        let first = self
            .index
            .checked_mul(u64::from(FULL_WIDTH))
            .ok_or(MerkleError::TooLarge(self.index))?;
        (0..u64::from(self.width))
            .map(|i| {
                let n = first
                    .checked_add(i)
                    .ok_or(MerkleError::TooLarge(self.index))?;
                Ok(stored_hash_index(level, n)?)
            })
            .collect()
    }

    /// The tile's content: its hashes concatenated, `32 × width` bytes.
    ///
    /// # Errors
    /// As [`Tile::stored_hash_indexes`], or the reader's error.
    pub fn read_data<R: HashReader + ?Sized>(&self, reader: &R) -> Result<Vec<u8>, TileError> {
        let indexes = self.stored_hash_indexes()?;
        let hashes = reader.read_hashes(&indexes)?;
        if hashes.len() != indexes.len() {
            return Err(MerkleError::ReaderCount {
                want: indexes.len(),
                got: hashes.len(),
            }
            .into());
        }
        let mut data = Vec::with_capacity(hashes.len() * HASH_SIZE);
        hashes.iter().for_each(|h| data.extend_from_slice(&h.0));
        Ok(data)
    }
}

impl fmt::Display for Tile {
    /// The tile path, `tile/<L>/<N>[.p/<W>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tile/{}/", self.level)?;
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let (last, leading) = groups.split_first().ok_or(fmt::Error)?;
        for group in leading.iter().rev() {
            write!(f, "x{group:03}/")?;
        }
        write!(f, "{last:03}")?;
        if self.is_partial() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

impl FromStr for Tile {
    type Err = TileError;

    /// Parses a hash tile path, strictly: exactly the form [`fmt::Display`] writes.
    fn from_str(path: &str) -> Result<Self, TileError> {
        let malformed = |reason| TileError::MalformedPath {
            path: excerpt(path),
            reason,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| malformed("it does not start with `tile/`"))?;
        let elements: Vec<&str> = rest.split('/').collect();
        let (level, elements) = elements
            .split_first()
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| malformed("it has no index"))?;
        let level = parse_decimal(level, 0, u64::from(MAX_LEVEL))
            .ok_or_else(|| malformed("the level is not a number from 0 to 63"))?;
        // A partial tile ends `<last index element>.p/<W>`.
        let (index_elements, width) = match elements {
            [head @ .., last, width] if last.ends_with(".p") => {
                let width = parse_decimal(width, 1, u64::from(FULL_WIDTH) - 1)
                    .ok_or_else(|| malformed("the width is not a number from 1 to 255"))?;
                let mut index_elements = head.to_vec();
                index_elements.push(&last[..last.len() - 2]);
                (index_elements, width)
            }
            _ => (elements.to_vec(), u64::from(FULL_WIDTH)),
        };
        let index = parse_index(&index_elements)
            .ok_or_else(|| malformed("the index is not in canonical 3-digit elements"))?;
        let level = u8::try_from(level).map_err(|_| malformed("the level is too large"))?;
        let width = u16::try_from(width).map_err(|_| malformed("the width is too large"))?;
        Tile::new(level, index, width)
    }
}

/// `x123/x456/789`: every element 3 digits, all but the last after an `x`, no leading `x000`,
/// and the value fits a `u64`.
fn parse_index(elements: &[&str]) -> Option<u64> {
    let (last, leading) = elements.split_last()?;
    if leading.first() == Some(&"x000") {
        return None;
    }
    let mut n: u64 = 0;
    for element in leading
        .iter()
        .map(|e| e.strip_prefix('x'))
        .chain([Some(*last)])
    {
        let digits = element.filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))?;
        n = n.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    Some(n)
}

/// ASCII digits without a leading zero (but `0` itself), within `min..=max`.
fn parse_decimal(s: &str, min: u64, max: u64) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let n: u64 = canonical.then(|| s.parse().ok()).flatten()?;
    (min..=max).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_elements_are_read_in_groups_of_three() {
        assert_eq!(parse_index(&["x001", "x234", "067"]), Some(1_234_067));
        assert_eq!(parse_index(&["000"]), Some(0));
        assert_eq!(parse_index(&["x001", "000"]), Some(1000));
        assert_eq!(parse_index(&["x000", "001"]), None);
        assert_eq!(parse_index(&["x001", "x000", "000"]), Some(1_000_000));
        assert_eq!(parse_index(&["01"]), None);
        assert_eq!(parse_index(&["0001"]), None);
        assert_eq!(parse_index(&["001", "002"]), None);
        assert_eq!(parse_index(&["x01a"]), None);
        assert_eq!(parse_index(&["x+01", "000"]), None);
        assert_eq!(
            parse_index(&["x018", "x446", "x744", "x073", "x709", "x551", "615"]),
            Some(u64::MAX)
        );
        assert_eq!(
            parse_index(&["x018", "x446", "x744", "x073", "x709", "x551", "616"]),
            None
        );
    }

    #[test]
    fn decimals_refuse_signs_and_leading_zeroes() {
        assert_eq!(parse_decimal("0", 0, 63), Some(0));
        assert_eq!(parse_decimal("63", 0, 63), Some(63));
        for bad in ["", "00", "01", "+1", "64", " 1", "1a"] {
            assert_eq!(parse_decimal(bad, 0, 63), None, "{bad:?}");
        }
    }
}
