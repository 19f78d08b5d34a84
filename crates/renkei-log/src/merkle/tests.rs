//! Unit tests of `merkle.rs`.

use super::*;

#[test]
fn stored_hash_index_matches_the_go_numbering_for_small_trees() {
    // Appending leaves 0..4 writes: L0(0); L0(1) L1(0); L0(2); L0(3) L1(1) L2(0).
    let expect = [
        (0, 0),
        (0, 1),
        (1, 0),
        (0, 2),
        (0, 3),
        (1, 1),
        (2, 0),
        (0, 4),
    ];
    for (index, &(level, n)) in expect.iter().enumerate() {
        assert_eq!(stored_hash_index(level, n).unwrap(), index as u64);
        assert_eq!(split_stored_hash_index(index as u64).unwrap(), (level, n));
    }
}

#[test]
fn split_stored_hash_index_inverts_stored_hash_index() {
    for index in 0..5000u64 {
        let (level, n) = split_stored_hash_index(index).unwrap();
        assert_eq!(stored_hash_index(level, n).unwrap(), index);
    }
    let last = stored_before(MAX_TREE_SIZE) - 1;
    let (level, n) = split_stored_hash_index(last).unwrap();
    assert_eq!((level, n), (62, 0));
    assert_eq!(stored_hash_index(level, n).unwrap(), last);
}

#[test]
fn positions_beyond_the_largest_tree_are_refused_not_wrapped() {
    assert!(matches!(
        stored_hash_index(0, MAX_TREE_SIZE),
        Err(MerkleError::TooLarge(_))
    ));
    assert!(matches!(
        stored_hash_index(63, 1),
        Err(MerkleError::TooLarge(_))
    ));
    assert!(matches!(
        stored_hash_index(255, 0),
        Err(MerkleError::TooLarge(_))
    ));
    assert!(matches!(
        stored_hash_index(0, u64::MAX),
        Err(MerkleError::TooLarge(_))
    ));
    assert!(split_stored_hash_index(u64::MAX).is_err());
    assert!(stored_hash_count(MAX_TREE_SIZE + 1).is_err());
    assert!(inclusion_proof_indexes(0, u64::MAX).is_err());
    assert!(consistency_proof_indexes(1, u64::MAX).is_err());
    assert!(tree_hash_indexes(u64::MAX).is_err());
}

#[test]
fn stored_hash_count_is_where_the_next_leaf_goes() {
    for size in 0..300u64 {
        assert_eq!(
            stored_hash_count(size).unwrap(),
            stored_hash_index(0, size).unwrap()
        );
    }
}

#[test]
fn hash_from_slice_wants_exactly_32_bytes() {
    assert!(Hash::from_slice(&[0; 32]).is_ok());
    assert!(matches!(
        Hash::from_slice(&[]),
        Err(MerkleError::HashLength { len: 0 })
    ));
    assert!(Hash::from_slice(&[0; 33]).is_err());
}

#[test]
fn a_reader_that_answers_short_is_an_error_not_a_panic() {
    struct Short;
    impl HashReader for Short {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, MerkleError> {
            Ok(vec![Hash::default()])
        }
    }
    assert!(matches!(
        inclusion_proof(0, 8, &Short),
        Err(MerkleError::ReaderCount { want: 3, got: 1 })
    ));
    assert!(matches!(
        tree_hash(7, &Short),
        Err(MerkleError::ReaderCount { .. })
    ));
}
