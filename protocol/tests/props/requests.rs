//! `parse_request`, `RequestParser` and `split_inline` against generated input.

use keel_protocol::resp::{encode_request, encode_request_args, parse_request, split_inline, Limits, RequestParser};
use proptest::prelude::*;

use crate::strategies::{argv, chunk_ends, limits, protocolish};

type Parsed = Option<(Vec<Vec<u8>>, usize)>;

fn parse(buf: &[u8]) -> Parsed {
    parse_request(buf, &Limits::default()).expect("valid request")
}

proptest! {
    #[test]
    fn multibulk_round_trip(argv in argv()) {
        let mut buf = Vec::new();
        encode_request_args(&argv, &mut buf);
        prop_assert_eq!(parse(&buf), Some((argv.clone(), buf.len())));
        for k in 0..buf.len() {
            prop_assert_eq!(parse(&buf[..k]), None, "prefix of {} bytes", k);
        }
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let mut again = Vec::new();
        encode_request(&refs, &mut again);
        prop_assert_eq!(again, buf);
    }

    /// A connection's worth of pipelined requests arriving in arbitrary chunks: the
    /// stateless and the resumable parser both return every request, in order.
    #[test]
    fn pipelined_in_chunks(reqs in prop::collection::vec(argv(), 1..12), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let mut wire = Vec::new();
        for argv in &reqs {
            encode_request_args(argv, &mut wire);
        }
        let limits = Limits::default();
        let (mut got_stateless, mut got_resumed) = (Vec::new(), Vec::new());
        let (mut at_stateless, mut at_resumed) = (0, 0);
        let mut parser = RequestParser::new();
        for end in chunk_ends(wire.len(), &cuts) {
            let seen = &wire[..end];
            while let Some((argv, used)) = parse_request(&seen[at_stateless..], &limits).unwrap() {
                got_stateless.push(argv);
                at_stateless += used;
            }
            while let Some((argv, used)) = parser.parse(&seen[at_resumed..], &limits).unwrap() {
                got_resumed.push(argv);
                at_resumed += used;
            }
        }
        prop_assert_eq!(&got_stateless, &reqs);
        prop_assert_eq!(&got_resumed, &reqs);
        prop_assert_eq!((at_stateless, at_resumed), (wire.len(), wire.len()));
        prop_assert!(!parser.in_progress());
    }

    /// Any bytes survive inline double quotes written with `\xHH` escapes.
    #[test]
    fn inline_hex_quoted(argv in argv()) {
        let mut line = Vec::new();
        for arg in &argv {
            line.extend_from_slice(b" \"");
            for b in arg {
                line.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
            line.push(b'"');
        }
        prop_assert_eq!(split_inline(&line), Ok(argv.clone()));
        line.extend_from_slice(b"\r\n");
        if !argv.is_empty() {
            prop_assert_eq!(parse(&line), Some((argv, line.len())));
        }
    }

    /// Bytes other than NUL and `\` survive single quotes with `\'` escapes.
    #[test]
    fn inline_single_quoted(argv in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no NUL or backslash", |b| *b != 0 && *b != b'\\'), 0..20), 1..6)) {
        let mut line = Vec::new();
        for arg in &argv {
            line.extend_from_slice(b"\t'");
            for &b in arg {
                if b == b'\'' {
                    line.extend_from_slice(b"\\'");
                } else {
                    line.push(b);
                }
            }
            line.push(b'\'');
        }
        prop_assert_eq!(split_inline(&line), Ok(argv));
    }

    /// Plain words (no quotes, no leading `*`) separated by runs of blanks. (`\v` and `\f` are skipped before a
    /// word but, as in Redis, do not end one.)
    #[test]
    fn inline_words(words in prop::collection::vec("[!#-&(-)+-~]{1,10}", 0..8), gaps in prop::collection::vec("[ \t]{1,3}", 8), lead in "[ \t\x0b\x0c]{0,3}") {
        let mut line = lead;
        for (w, gap) in words.iter().zip(&gaps) {
            line.push_str(w);
            line.push_str(gap);
        }
        line.push('\n');
        let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        prop_assert_eq!(parse(line.as_bytes()), Some((want, line.len())));
    }

    /// On any input: no panic, and once a prefix gives a definite answer (a request or
    /// an error), every longer buffer gives the same one.
    #[test]
    fn garbage_is_monotone(input in prop_oneof![protocolish(), prop::collection::vec(any::<u8>(), 0..64)], limits in limits()) {
        let mut definite = None;
        for k in 0..=input.len() {
            let got = parse_request(&input[..k], &limits);
            match (&definite, &got) {
                (None, Ok(None)) => {}
                (None, _) => definite = Some(got),
                (Some(first), _) => prop_assert_eq!(first, &got, "prefix of {} bytes", k),
            }
        }
    }
}
