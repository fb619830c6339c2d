//! Redis Cluster key slots: CRC16/XMODEM of the key (only the part inside the first non-empty
//! `{…}` when there is one), and the slot of the first key of an encoded round trip. Pure
//! functions: workloads keep a round trip's keys in one slot with them, clients route with them.

/// Number of hash slots.
pub const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021), the checksum Redis Cluster hashes keys with.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, b| (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ b) as usize])
}

/// The slot of a key: only the part inside the first non-empty `{…}` counts, when there is one.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|b| *b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS as u16
}

/// The slot of the first key in an encoded round trip (`*N $len CMD $len KEY …`), skipping MULTI.
/// Workloads keep every key of a round trip in one slot, so the first key routes the whole of it.
/// `None` when the first command has no argument.
pub fn first_key_slot(buf: &[u8]) -> Option<u16> {
    let mut rest = buf;
    loop {
        let (argc, after) = header(rest, b'*')?;
        let (name_len, after) = header(after, b'$')?;
        let name = after.get(..name_len)?;
        let after = after.get(name_len + 2..)?;
        if argc == 1 {
            if name.eq_ignore_ascii_case(b"MULTI") {
                rest = after;
                continue;
            }
            return None;
        }
        let (key_len, after) = header(after, b'$')?;
        return Some(slot(after.get(..key_len)?));
    }
}

/// Parses `<marker><decimal>\r\n`, returning the number and what follows.
fn header(buf: &[u8], marker: u8) -> Option<(usize, &[u8])> {
    if buf.first() != Some(&marker) {
        return None;
    }
    let end = buf.iter().position(|b| *b == b'\r')?;
    let n = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    Some((n, buf.get(end + 2..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn the_first_key_routes_a_round_trip() {
        let mut buf = Vec::new();
        crate::resp::command(&mut buf, &[b"MULTI"]);
        crate::resp::command(&mut buf, &[b"SET", b"foo", b"1"]);
        crate::resp::command(&mut buf, &[b"EXEC"]);
        assert_eq!(first_key_slot(&buf), Some(12182));
        let mut buf = Vec::new();
        crate::resp::command(&mut buf, &[b"GET", b"bar"]);
        assert_eq!(first_key_slot(&buf), Some(5061));
        let mut buf = Vec::new();
        crate::resp::command(&mut buf, &[b"PING"]);
        assert_eq!(first_key_slot(&buf), None);
        assert_eq!(first_key_slot(b"garbage"), None);
    }
}
