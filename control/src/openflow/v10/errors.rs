//! OpenFlow 1.0's ERROR codes for rvs's [`OfpError`]s (which are 1.3's), as
//! OVS encodes them: 1.0's own type/code where 1.0 has one, else OVS's
//! vendor error (type NXET_VENDOR, then Nicira's type/code), else
//! NXBRC_UNENCODABLE_ERROR.

use crate::openflow::error::OfpError;
use crate::openflow::wire::{Put, NX_VENDOR};

/// NXET_VENDOR: the error type of OVS's vendor errors in 1.0.
pub const NXET_VENDOR: u16 = 0xb0c2;

/// How an error goes on the 1.0 wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error10 {
    /// OpenFlow 1.0's type and code.
    Std(u16, u16),
    /// OVS's vendor error: Nicira's type and code.
    Nx(u16, u16),
}

/// NXBRC_UNENCODABLE_ERROR: what OVS sends for an error 1.0 cannot say.
const UNENCODABLE: Error10 = Error10::Nx(1, 521);

/// The 1.0 form of `e`.
pub fn to_v10(e: OfpError) -> Error10 {
    use Error10::{Nx, Std};
    match (e.typ, e.code) {
        // HELLO_FAILED, BAD_REQUEST 0..8 and BAD_ACTION 0..8 are 1.0's too.
        (0, c @ 0..=1) => Std(0, c),
        (1, c @ 0..=8) => Std(1, c),
        (2, c @ 0..=8) => Std(2, c),
        (1, 9) => Nx(1, 512),
        // IS_SLAVE: 1.0 says EPERM.
        (1, 10) => Std(1, 5),
        (1, 11) => Nx(1, 514),
        (2, 9) => Nx(2, 9),
        (2, 13) => Nx(1, 523),
        (2, 14) => Nx(1, 524),
        (2, 15) => Nx(1, 525),
        (3, 1) => Nx(2, 257),
        (4, 6) => Nx(0, 263),
        (4, 7) => Nx(1, 258),
        (4, 8) => Nx(1, 259),
        (4, 9) => Nx(1, 260),
        (4, 10) => Nx(1, 261),
        // FLOW_MOD_FAILED: 1.0 numbers them differently.
        (5, 1) => Std(3, 0),
        (5, 2) => Nx(5, 257),
        (5, 3) => Std(3, 1),
        (5, 4) => Std(3, 2),
        (5, 6) => Std(3, 4),
        (5, 7) => Nx(3, 258),
        (6, c) => Nx(6, c),
        // PORT_MOD_FAILED is type 4 in 1.0.
        (7, c @ 0..=1) => Std(4, c),
        (11, 2) => Nx(1, 513),
        // QUEUE_OP_FAILED is type 5 in 1.0.
        (9, c @ 0..=2) => Std(5, c),
        _ => UNENCODABLE,
    }
}

/// Append an ERROR body (type, code, data) for `e` answering `request`.
pub fn put_error(b: &mut Vec<u8>, e: OfpError, request: &[u8]) {
    let data = &request[..request.len().min(64)];
    match to_v10(e) {
        Error10::Std(t, c) => {
            b.put_u16(t);
            b.put_u16(c);
        }
        Error10::Nx(t, c) => {
            b.put_u16(NXET_VENDOR);
            b.put_u16(0); // NXVC_VENDOR_ERROR
            b.put_u32(NX_VENDOR);
            b.put_u16(t);
            b.put_u16(c);
        }
    }
    b.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_take_their_one_zero_form() {
        assert_eq!(to_v10(OfpError::BAD_REQUEST_LEN), Error10::Std(1, 6));
        assert_eq!(to_v10(OfpError::IS_SLAVE), Error10::Std(1, 5));
        assert_eq!(to_v10(OfpError::FLOW_MOD_OVERLAP), Error10::Std(3, 1));
        assert_eq!(to_v10(OfpError::PORT_MOD_BAD_HW_ADDR), Error10::Std(4, 1));
        assert_eq!(to_v10(OfpError::BAD_MATCH_PREREQ), Error10::Nx(1, 260));
        assert_eq!(to_v10(OfpError::ROLE_STALE), UNENCODABLE);
        let mut b = Vec::new();
        put_error(&mut b, OfpError::DUP_FIELD, &[9; 100]);
        assert_eq!(&b[..12], &[0xb0, 0xc2, 0, 0, 0, 0, 0x23, 0x20, 0, 1, 0x01, 0x05]);
        assert_eq!(b.len(), 12 + 64);
    }
}
