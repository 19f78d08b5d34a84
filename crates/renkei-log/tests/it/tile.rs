//! Hash tiles: strict path parsing and formatting (with property tests), which tiles a tree
//! size has, and tile contents read from stored hashes.

use crate::common::stored;
use proptest::prelude::*;
use renkei_log::Hash;
use renkei_log::merkle::{leaf_hash, root_hash};
use renkei_log::tile::{Tile, TileError};

fn tile(level: u8, index: u64, width: u16) -> Tile {
    Tile::new(level, index, width).unwrap()
}

#[test]
fn the_spec_example_index_is_written_in_x_prefixed_groups() {
    assert_eq!(tile(0, 1_234_067, 256).to_string(), "tile/0/x001/x234/067");
    assert_eq!(
        tile(0, 1_234_067, 8).to_string(),
        "tile/0/x001/x234/067.p/8"
    );
    assert_eq!(
        "tile/0/x001/x234/067".parse::<Tile>().unwrap(),
        tile(0, 1_234_067, 256)
    );
    assert_eq!(
        "tile/0/x001/x234/067.p/8".parse::<Tile>().unwrap(),
        tile(0, 1_234_067, 8)
    );
}

#[test]
fn small_and_extreme_indexes_are_written_canonically() {
    assert_eq!(tile(0, 0, 256).to_string(), "tile/0/000");
    assert_eq!(tile(3, 999, 1).to_string(), "tile/3/999.p/1");
    assert_eq!(tile(63, 1000, 255).to_string(), "tile/63/x001/000.p/255");
    assert_eq!(
        tile(1, u64::MAX, 256).to_string(),
        "tile/1/x018/x446/x744/x073/x709/x551/615"
    );
}

#[test]
fn malformed_tile_paths_are_refused() {
    for bad in [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "tile//000",
        "/tile/0/000",
        "Tile/0/000",
        "tile/00/000",
        "tile/01/000",
        "tile/+1/000",
        "tile/64/000",
        "tile/entries/000",
        "tile/0/1",
        "tile/0/01",
        "tile/0/0000",
        "tile/0/x000/001",
        "tile/0/x001",
        "tile/0/001/002",
        "tile/0/x1000/000",
        "tile/0/X001/000",
        "tile/0/x01/000",
        "tile/0/000/",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/0",
        "tile/0/000.p/08",
        "tile/0/000.p/+8",
        "tile/0/000.p/256",
        "tile/0/000.p/8/",
        "tile/0/000.P/8",
        "tile/0/000.p.p/8",
        "tile/0/x001.p/8",
        "tile/0/x001/.p/8",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
        "tile/0/000 ",
        "tile/0/ 000",
        "tile/0/０００",
    ] {
        assert!(bad.parse::<Tile>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_malformed_path_error_quotes_the_path() {
    let err = "tile/0/0000".parse::<Tile>().unwrap_err();
    assert!(matches!(err, TileError::MalformedPath { .. }));
    assert!(
        err.to_string()
            .starts_with("tile path `tile/0/0000` is malformed: "),
        "{err}"
    );
}

#[test]
fn tiles_outside_the_allowed_levels_and_widths_cannot_be_built() {
    assert!(matches!(
        Tile::new(64, 0, 1),
        Err(TileError::InvalidLevel(64))
    ));
    assert!(matches!(
        Tile::new(0, 0, 0),
        Err(TileError::InvalidWidth(0))
    ));
    assert!(matches!(
        Tile::new(0, 0, 257),
        Err(TileError::InvalidWidth(257))
    ));
}

#[test]
fn a_tree_of_70000_has_the_tiles_the_spec_lists() {
    let size = 70_000;
    assert!(tile(0, 272, 256).is_within(size));
    assert!(!tile(0, 273, 256).is_within(size));
    assert!(tile(0, 273, 112).is_within(size));
    assert!(!tile(0, 273, 113).is_within(size));
    assert!(tile(1, 0, 256).is_within(size));
    assert!(tile(1, 1, 17).is_within(size));
    assert!(!tile(1, 1, 18).is_within(size));
    assert!(tile(2, 0, 1).is_within(size));
    assert!(!tile(2, 0, 2).is_within(size));
    assert!(!tile(3, 0, 1).is_within(size));
    assert!(!tile(63, u64::MAX, 256).is_within(u64::MAX));
    // A tree of 256 has a full level-0 tile and a level-1 tile of width 1.
    assert!(tile(0, 0, 256).is_within(256));
    assert!(tile(1, 0, 1).is_within(256));
}

#[test]
fn tile_contents_come_from_the_stored_hashes() {
    let leaves: Vec<Hash> = (0..3 * 256 + 5u32)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let stored = stored(&leaves);

    let data = tile(0, 1, 256).read_data(&stored).unwrap();
    let expected: Vec<u8> = leaves[256..512].iter().flat_map(|h| h.0).collect();
    assert_eq!(data, expected);

    let partial = tile(0, 3, 5).read_data(&stored).unwrap();
    let expected: Vec<u8> = leaves[768..773].iter().flat_map(|h| h.0).collect();
    assert_eq!(partial, expected);

    // Each level-1 hash is the Merkle Tree Hash of a full level-0 tile.
    let upper = tile(1, 0, 3).read_data(&stored).unwrap();
    for (i, chunk) in upper.chunks(32).enumerate() {
        let below = &leaves[i * 256..(i + 1) * 256];
        assert_eq!(chunk, root_hash(below).0, "level-1 hash {i}");
    }

    // A tile the tree does not have yet cannot be read.
    assert!(tile(1, 0, 4).read_data(&stored).is_err());
    assert!(tile(0, 3, 6).read_data(&stored).is_err());
}

#[test]
fn tiles_beyond_the_largest_supported_tree_have_no_stored_hashes() {
    assert!(tile(7, 0, 1).stored_hash_indexes().is_ok());
    assert!(tile(8, 0, 1).stored_hash_indexes().is_err());
    assert!(tile(40, 0, 1).stored_hash_indexes().is_err());
    assert!(tile(0, u64::MAX, 256).stored_hash_indexes().is_err());
}

proptest! {
    #[test]
    fn every_tile_path_parses_back_to_its_tile(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
        let t = tile(level, index, width);
        let path = t.to_string();
        prop_assert_eq!(path.parse::<Tile>().unwrap(), t);
    }

    #[test]
    fn small_tile_paths_parse_back_to_their_tile(level in 0u8..=63, index in 0u64..2_000_000, width in 1u16..=256) {
        let t = tile(level, index, width);
        prop_assert_eq!(t.to_string().parse::<Tile>().unwrap(), t);
    }

    #[test]
    fn a_path_that_parses_is_exactly_the_canonical_path(
        path in r"tile/[0-9+x]{0,3}(/x?[0-9]{0,4}){1,8}(\.p/[0-9]{0,4})?/?"
    ) {
        if let Ok(t) = path.parse::<Tile>() {
            prop_assert_eq!(t.to_string(), path);
        }
    }

    #[test]
    fn one_changed_character_never_gives_another_valid_path(
        level in 0u8..=63, index in any::<u64>(), width in 1u16..=256,
        pick in any::<prop::sample::Index>(), replacement in prop::sample::select(vec!['0', '1', '9', 'x', '/', '.', 'p', '+', ' ']),
    ) {
        let path = tile(level, index, width).to_string();
        let mut chars: Vec<char> = path.chars().collect();
        let k = pick.index(chars.len());
        chars[k] = replacement;
        let changed: String = chars.into_iter().collect();
        if let Ok(t) = changed.parse::<Tile>() {
            prop_assert_eq!(t.to_string(), changed);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_the_parser(path in any::<String>()) {
        let _ = path.parse::<Tile>();
        let _ = format!("tile/{path}").parse::<Tile>();
    }
}
