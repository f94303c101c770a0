use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
struct Inner {
    size: u32,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Shape {
    Fixed(u32),
    Uniform { min: u32, max: u32 },
    Nothing,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Doc {
    name: String,
    count: u64,
    #[serde(default)]
    items: Vec<Inner>,
    #[serde(default)]
    shapes: Vec<Shape>,
    #[serde(default)]
    flag: bool,
}

fn load(src: &str) -> Result<Doc, Vec<YamlError>> {
    from_node(&parse(src).map_err(|e| vec![e])?)
}

#[test]
fn valid_document_deserializes() {
    let doc = load(
        "name: a\ncount: 3\nflag: true\nitems:\n  - size: 4\n    label: x\nshapes:\n  - fixed: 3\n  - uniform: {min: 1, max: 2}\n  - nothing\n",
    )
    .unwrap();
    assert_eq!(doc.count, 3);
    assert_eq!(doc.items[0], Inner { size: 4, label: Some("x".into()) });
    assert_eq!(doc.shapes, vec![Shape::Fixed(3), Shape::Uniform { min: 1, max: 2 }, Shape::Nothing]);
}

#[test]
fn every_error_is_reported_with_its_line() {
    let src = "name: a\ncount: lots\nbogus: 1\nitems:\n  - size: big\n  - size: 2\n    colour: red\n  - label: x\n";
    let errs = load(src).unwrap_err();
    let lines: Vec<(u32, &str)> = errs.iter().map(|e| (e.pos.line, e.path.as_str())).collect();
    assert_eq!(
        lines,
        vec![(2, "count"), (3, "bogus"), (5, "items[0].size"), (7, "items[1].colour"), (8, "items[2].size"),],
        "{errs:#?}"
    );
    assert!(errs[1].message.contains("unknown field `bogus`"));
    assert!(errs[4].message.contains("missing field `size`"));
}

#[test]
fn invalid_required_value_is_not_also_reported_missing() {
    let errs = load("name: a\ncount: many\n").unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].path, "count");
}

#[test]
fn unknown_field_suggests_the_closest_name() {
    let errs = load("name: a\ncount: 1\nflga: true\n").unwrap_err();
    assert!(errs[0].message.contains("did you mean `flag`"), "{}", errs[0].message);
}

#[test]
fn unknown_variant_is_located_at_its_key() {
    let errs = load("name: a\ncount: 1\nshapes:\n  - gaussian: 3\n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].pos.line, errs[0].pos.col), (4, 5));
    assert!(errs[0].message.contains("unknown variant `gaussian`"), "{}", errs[0].message);
}

#[test]
fn syntax_errors_have_positions() {
    let err = parse("name: a\n  count: [1, 2\n").unwrap_err();
    assert!(err.message.starts_with("YAML syntax error"), "{err}");
    assert!(err.pos.line >= 2);
}

#[test]
fn duplicate_keys_are_errors() {
    let errs = load("name: a\ncount: 1\nname: b\n").unwrap_err();
    assert_eq!(errs[0].path, "name");
    assert_eq!(errs[0].pos.line, 3);
    assert!(errs[0].message.contains("duplicate key"));
}

#[test]
fn anchors_and_aliases_resolve() {
    let doc = load("name: &n a\ncount: 2\nitems:\n  - &i {size: 1}\n  - *i\n").unwrap();
    assert_eq!(doc.items.len(), 2);
    assert_eq!(doc.name, "a");
}

#[test]
fn merge_keys_fill_in_what_the_mapping_does_not_set() {
    let doc = load("base: &b {size: 1, label: x}\nname: a\ncount: 2\nitems:\n  - <<: *b\n    size: 5\n");
    // `base` is not a field of Doc: only the merge result matters here.
    let errs = doc.unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    let root = parse("d: &d {a: 1, b: 2}\ne:\n  <<: *d\n  b: 3\n").unwrap();
    let e = root.get("e").unwrap();
    assert_eq!(e.get("a").and_then(Node::as_str), Some("1"));
    assert_eq!(e.get("b").and_then(Node::as_str), Some("3"));
}

#[test]
fn collecting_many_problems_costs_one_pass_not_one_per_problem() {
    // Regression (issue 16): the whole tree was deserialized again after each problem, so
    // 4,000 bad values took 12.6 s (and 20,000 over a minute). Every problem is still
    // reported, in a list and in a map alike.
    #[derive(Debug, Deserialize)]
    struct Many {
        #[allow(dead_code)]
        items: Vec<Inner>,
        #[allow(dead_code)]
        props: std::collections::BTreeMap<String, u32>,
    }
    let n = 20_000;
    let mut src = String::from("items:\n");
    for _ in 0..n {
        src.push_str("  - {size: big, colour: red}\n");
    }
    src.push_str("props:\n");
    for i in 0..n {
        src.push_str(&format!("  k{i}: [x]\n"));
    }
    let started = std::time::Instant::now();
    let errs = from_node::<Many>(&parse(&src).unwrap()).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(errs.len(), 3 * n, "a bad size and an unknown field per item, a bad value per prop");
    assert_eq!(errs[1].path, "items[0].colour");
    assert_eq!(errs.last().map(|e| e.path.as_str()), Some("props.k19999"));
}

/// `x0: &a0 [x, x, ...]`, then each level ten aliases of the one before.
fn alias_bomb(levels: usize) -> String {
    let mut s = String::from("x0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..levels {
        let prev = format!("*a{}", i - 1);
        s.push_str(&format!("x{i}: &a{i} [{}]\n", vec![prev; 10].join(",")));
    }
    s
}

#[test]
fn an_alias_bomb_is_refused_at_once_at_the_alias_that_crosses_the_budget() {
    // Regression (issue 16): 363 bytes of six nested alias levels took 24 s and 3 GB, eight
    // levels aborted at a 4 GB limit.
    for levels in [6, 8, 12] {
        let src = alias_bomb(levels);
        let started = std::time::Instant::now();
        let e = parse(&src).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{levels} levels");
        assert!(e.message.contains("expands through its aliases to more than"), "{e}");
        assert!(e.message.contains("an alias bomb is not read"), "{e}");
        assert!(e.pos.line >= 5, "located at the alias: {e}");
    }
    // Four levels (11,110 nodes from 150 bytes) is within the budget: aliases still work.
    assert!(parse(&alias_bomb(4)).is_ok());
}

#[test]
fn a_ten_thousand_line_alias_chain_is_refused_without_aborting() {
    // Regression (issue 16): `aN: &aN [*aN-1]` over 10,000 lines aborted (each copy nests one
    // level deeper, and everything that walks the tree recurses).
    let mut src = String::from("a0: &a0 [x]\n");
    for i in 1..10_000 {
        src.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
    }
    let e = parse(&src).unwrap_err();
    assert_eq!(e.message, "the document nests deeper than 64 levels", "{e}");
    assert_eq!(e.pos.line, 63, "where the copy would make 65 levels");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let src = "[".repeat(100_000);
    let e = parse(&src).unwrap_err();
    assert!(e.message.contains("nests deeper than 64 levels") || e.message.starts_with("YAML syntax error"), "{e}");
    let ok = format!("{}x{}", "[".repeat(60), "]".repeat(60));
    assert!(parse(&ok).is_ok());
}

#[test]
fn path_index_locates_nested_fields() {
    let root = parse("a:\n  b:\n    - c: 1\n").unwrap();
    let idx = path_index(&root);
    assert_eq!(locate(&idx, "a.b[0].c"), Pos { line: 3, col: 10 });
    assert_eq!(locate(&idx, "a.b[0].missing"), Pos { line: 3, col: 7 });
}
