use super::*;

fn limits() -> Limits {
    Limits::default()
}

/// `input` parses to `argv` using all of it; every strict prefix is incomplete, and the
/// resumable parser fed byte by byte agrees.
fn check(input: &[u8], argv: &[&[u8]]) {
    check_with(input, argv, &limits());
}

fn check_with(input: &[u8], argv: &[&[u8]], limits: &Limits) {
    let want: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    assert_eq!(parse_request(input, limits), Ok(Some((want.clone(), input.len()))), "input {input:?}");
    for k in 0..input.len() {
        assert_eq!(parse_request(&input[..k], limits), Ok(None), "prefix {:?}", &input[..k]);
    }
    let mut p = RequestParser::new();
    for k in 0..input.len() {
        assert_eq!(p.parse(&input[..k], limits), Ok(None), "resumed prefix {:?}", &input[..k]);
    }
    assert_eq!(p.parse(input, limits), Ok(Some((want, input.len()))));
    assert!(!p.in_progress());
}

/// `input` is rejected with `msg`; every prefix is incomplete or the same error.
fn check_err(input: &[u8], msg: &str) {
    check_err_with(input, msg, &limits());
}

fn check_err_with(input: &[u8], msg: &str, limits: &Limits) {
    let want = Err(ProtocolError::new(msg));
    assert_eq!(parse_request(input, limits), want, "input {input:?}");
    for k in 0..input.len() {
        let got = parse_request(&input[..k], limits);
        assert!(got == Ok(None) || got == want, "prefix {:?}: {got:?}", &input[..k]);
    }
}

#[test]
fn multibulk() {
    check(b"*1\r\n$4\r\nPING\r\n", &[b"PING"]);
    check(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", &[b"SET", b"k", b""]);
    check(b"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n", &[b"GET", b"a\r\nb"]);
    check(b"*1\r\n$3\r\n\x00\xff*\r\n", &[b"\x00\xff*"]);
}

#[test]
fn empty_multibulk_is_ignored() {
    check(b"*0\r\n", &[]);
    check(b"*-1\r\n", &[]);
    check(b"*-5\r\n", &[]);
}

#[test]
fn uses_only_one_request() {
    let input = b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI";
    assert_eq!(parse_request(input, &limits()), Ok(Some((vec![b"PING".to_vec()], 14))));
    assert_eq!(parse_request(&input[14..], &limits()), Ok(None));
    let inline = b"PING\nECHO";
    assert_eq!(parse_request(inline, &limits()), Ok(Some((vec![b"PING".to_vec()], 5))));
}

#[test]
fn trailing_bytes_are_skipped_like_redis() {
    // Redis skips the two bytes after `\r` and after each argument without checking them.
    check(b"*1\rx$4\r\nPINGxy", &[b"PING"]);
}

#[test]
fn multibulk_errors() {
    check_err(b"*x\r\n", "invalid multibulk length");
    check_err(b"*\r\n", "invalid multibulk length");
    check_err(b"*01\r\n", "invalid multibulk length");
    check_err(b"*+1\r\n", "invalid multibulk length");
    check_err(b"*2147483648\r\n", "invalid multibulk length");
    check_err(b"*2147483647\r\n", "invalid multibulk length");
    check_err(b"*99999999999999999999999\r\n", "invalid multibulk length");
    check_err(b"*1\r\n$x\r\n", "invalid bulk length");
    check_err(b"*1\r\n$-1\r\n", "invalid bulk length");
    check_err(b"*1\r\n$999999999999\r\n", "invalid bulk length");
    check_err(b"*1\r\n+PING\r\n", "expected '$', got '+'");
    check_err(b"*2\r\n$4\r\nPING\r\n:1\r\n", "expected '$', got ':'");
}

#[test]
fn limits_are_checked_before_reading() {
    let small = Limits { max_bulk_len: 8, max_array_len: 3, max_depth: 4, max_inline_len: 16, max_request_len: 1 << 20 };
    check_with(b"*3\r\n$8\r\n12345678\r\n$0\r\n\r\n$1\r\nx\r\n", &[b"12345678", b"", b"x"], &small);
    check_err_with(b"*4\r\n", "invalid multibulk length", &small);
    check_err_with(b"*1\r\n$9\r\n", "invalid bulk length", &small);
    check_with(b"0123456789abcdef\n", &[b"0123456789abcdef"], &small);
    check_err_with(b"0123456789abcdefg", "too big inline request", &small);
    check_err_with(b"0123456789abcdefg\n", "too big inline request", &small);
    check_err_with(b"*00000000000000000", "too big mbulk count string", &small);
    check_err_with(b"*1\r\n$0000000000000000", "too big bulk count string", &small);
}

#[test]
fn request_length_is_checked_at_each_argument_header() {
    let small = Limits { max_request_len: 30, ..Limits::default() };
    // 29 bytes: within the limit.
    check_with(b"*2\r\n$3\r\nSET\r\n$10\r\n0123456789\r\n", &[b"SET", b"0123456789"], &small);
    // The second argument would end at byte 31: refused at its header, before its bytes
    // arrive, in one call or resumed.
    let msg = "request exceeds client_query_buffer_limit of 30 bytes";
    check_err_with(b"*2\r\n$3\r\nSET\r\n$11\r\n", msg, &small);
    let mut p = RequestParser::new();
    assert_eq!(p.parse(b"*2\r\n$3\r\nSET\r\n", &small), Ok(None));
    assert_eq!(p.parse(b"*2\r\n$3\r\nSET\r\n$11\r\n", &small), Err(ProtocolError::new(msg)));
    // Many small arguments add up too; a count that could not fit is refused at once.
    check_err_with(b"*5\r\n", msg, &small);
    check_err_with(b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n", msg, &small);
}

#[test]
fn hostile_lengths_fail_fast() {
    let t = std::time::Instant::now();
    check_err(b"*2147483647\r\n", "invalid multibulk length");
    check_err(b"*1\r\n$999999999999\r\n", "invalid bulk length");
    // Within limits but absent: incomplete, and nothing was allocated for it.
    let big = Limits { max_array_len: i32::MAX as usize, max_request_len: usize::MAX, ..Limits::default() };
    assert_eq!(parse_request(b"*2147483647\r\n$1\r\nx\r\n", &big), Ok(None));
    // With the default 1 GiB request limit, so many arguments could never fit.
    let big = Limits { max_array_len: i32::MAX as usize, ..Limits::default() };
    assert!(parse_request(b"*2147483647\r\n", &big).is_err());
    assert_eq!(parse_request(b"*1\r\n$536870912\r\n", &limits()), Ok(None));
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn inline() {
    check(b"PING\r\n", &[b"PING"]);
    check(b"PING\n", &[b"PING"]);
    check(b"set  k\tv \r\n", &[b"set", b"k", b"v"]);
    check(b"\r\n", &[]);
    check(b"\n", &[]);
    check(b"   \t \r\n", &[]);
    check(b"a\rb\r\n", &[b"a", b"b"]);
    check(b"a\x0bb\r\n", &[b"a\x0bb"]);
}

#[test]
fn inline_quotes() {
    check(b"SET \"a b\" 'c d'\r\n", &[b"SET", b"a b", b"c d"]);
    check(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n", &[b"\n\r\t\x08\x07\\\"q"]);
    check(b"\"\\x41\\x7a\\xff\\x0\\xZZ\"\n", &[b"Az\xffx0xZZ"]);
    check(b"'it\\'s' 'a\\b'\n", &[b"it's", b"a\\b"]);
}

#[test]
fn inline_quote_errors() {
    check_err(b"\"abc\r\n", "unbalanced quotes in request");
    check_err(b"'abc\n", "unbalanced quotes in request");
    check_err(b"\"a\"b\n", "unbalanced quotes in request");
    check_err(b"'a'b\n", "unbalanced quotes in request");
    check_err(b"\"\\\"\n", "unbalanced quotes in request");
}

#[test]
fn inline_edge_cases() {
    // Quotes may open mid-argument; the closing quote must end it.
    assert_eq!(split_inline(b"a\"b c\""), Ok(vec![b"ab c".to_vec()]));
    assert_eq!(split_inline(b"\"\" ''"), Ok(vec![Vec::new(), Vec::new()]));
    // A NUL ends the line, as in Redis's C string handling.
    assert_eq!(split_inline(b"a b\x00c d"), Ok(vec![b"a".to_vec(), b"b".to_vec()]));
    assert_eq!(split_inline(b"\"a\x00b\""), Err(ProtocolError::new("unbalanced quotes in request")));
    // `\r` before `\n` is dropped before splitting, so a quote may end the line.
    check(b"\"a\"\r\n", &[b"a"]);
}

#[test]
fn pipelined() {
    let mut input = Vec::new();
    for i in 0..100 {
        input.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\nkey:{i}\r\n", 4 + i.to_string().len()).as_bytes());
        input.extend_from_slice(b"PING\r\n");
    }
    let mut at = 0;
    let mut n = 0;
    while let Some((argv, used)) = parse_request(&input[at..], &limits()).unwrap() {
        let want: Vec<Vec<u8>> = if n % 2 == 0 {
            vec![b"GET".to_vec(), format!("key:{}", n / 2).into_bytes()]
        } else {
            vec![b"PING".to_vec()]
        };
        assert_eq!(argv, want);
        at += used;
        n += 1;
    }
    assert_eq!((n, at), (200, input.len()));
}

#[test]
fn many_arguments() {
    // More than ARGV_PRESIZE arguments: the stateless parser checks completeness first.
    let args: Vec<Vec<u8>> = (0..40).map(|i| format!("arg{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let mut input = Vec::new();
    crate::resp::encode_request(&refs, &mut input);
    check(&input, &refs);
    // An error late in the request is found whether or not the request is complete.
    let mut bad = input.clone();
    let at = bad.windows(9).position(|w| w == b"$5\r\narg30").unwrap();
    bad[at] = b':';
    check_err(&bad, "expected '$', got ':'");
}
