//! How small a record value can be: the size rule of the two value formats, which validation
//! checks against each class's `size` before anything is planned.
//!
//! The encoder and decoder are in `wire.rs`; they use these constants, and a test there checks
//! that the widest stamp it encodes is exactly as long as [`min_value_size`] says.

use super::scenario::ValueFormat;

/// Size of the binary header (`format: binary`).
pub const BINARY_HEADER: usize = 48;

/// The JSON envelope with every value empty: keys, quotes and separators, in the order `wire.rs`
/// writes them.
pub const JSON_SKELETON: &str = r#"{"fs":1,"run":"","dev":"","di":,"cls":,"fw":,"seq":,"ct":,"it":,"pad":""}"#;

/// Digits of the widest value of each numeric envelope field: the run id (16 hex digits), the
/// device number (`u32`), class and firmware (`u16`), the sequence number (`9_999_999_999`) and the
/// two unix-microsecond timestamps (`9_999_999_999_999_999`).
const WIDEST_FIELDS: usize = 16 + 10 + 5 + 5 + 10 + 16 + 16;

/// The smallest value `format` can produce for device ids up to `max_id_len` bytes.
pub fn min_value_size(format: ValueFormat, max_id_len: usize) -> usize {
    match format {
        ValueFormat::Binary => BINARY_HEADER,
        ValueFormat::Json => JSON_SKELETON.len() + WIDEST_FIELDS + max_id_len,
    }
}
