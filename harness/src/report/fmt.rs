//! How figures read in every human output (terminal, Markdown, HTML, comparisons, gates): the
//! leaf helpers the rest of `report/` shares. It imports nothing of `report/`, so that every
//! module of it can use these without importing the others (no circle).

/// `850us`, `12.3ms`, `4.20s`.
pub fn us(v: u64) -> String {
    if v < 1_000 {
        format!("{v}us")
    } else if v < 1_000_000 {
        format!("{:.1}ms", v as f64 / 1e3)
    } else {
        format!("{:.2}s", v as f64 / 1e6)
    }
}

/// `1,234,567`.
pub fn count(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `4.25s`, or `n/a` for a duration that was not measured (never happened, never recovered).
pub fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |s| format!("{s:.2}s"))
}

/// Escape text for HTML (element content and quoted attribute values).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The stylesheet of every HTML page fleetstorm writes (`report.html`, `compare.html`): the pages
/// are self-contained, so it is inlined.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:2em auto;max-width:1180px;color:#222}\
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
.bad{color:#b00020;font-weight:bold}.ok{color:#176f2c;font-weight:bold}\
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em;margin:.4em 0}\
.chart svg{max-width:100%;height:auto}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:12px}";

/// Money with two decimals and thousands separators, e.g. `12,345.67 USD`.
pub fn money(v: f64, currency: &str) -> String {
    let cents = (v * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, (cents % 100).abs());
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{grouped}.{frac:02} {currency}", if cents < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_readable() {
        assert_eq!(us(850), "850us");
        assert_eq!(us(12_345), "12.3ms");
        assert_eq!(us(4_200_000), "4.20s");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(count(0), "0");
        assert_eq!(secs(Some(4.254)), "4.25s");
        assert_eq!(secs(None), "n/a");
    }

    #[test]
    fn esc_escapes_markup_and_quotes_and_ampersands_once() {
        assert_eq!(esc(r#"<b class="x">a & b</b>"#), "&lt;b class=&quot;x&quot;&gt;a &amp; b&lt;/b&gt;");
        assert_eq!(esc("&lt;"), "&amp;lt;");
        assert_eq!(esc("plain text"), "plain text");
    }

    #[test]
    fn money_groups_thousands_and_rounds_to_cents() {
        assert_eq!(money(12345.678, "USD"), "12,345.68 USD");
        assert_eq!(money(0.004, "USD"), "0.00 USD");
        assert_eq!(money(999.5, "EUR"), "999.50 EUR");
        assert_eq!(money(1_000_000.0, "USD"), "1,000,000.00 USD");
    }
}
