//! Tests of the filter module: parsing ([`parse`]), payloads ([`payload`]), the
//! reference evaluator ([`semantics`]) and the posting index against it ([`posting`]).

mod parse;
mod payload;
mod posting;
mod semantics;

use super::*;

fn kw(s: &str) -> Value {
    Value::Keyword(s.as_bytes().into())
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    Fields::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.clone())))
}
