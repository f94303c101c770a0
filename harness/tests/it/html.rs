//! report.html in a real browser: Debian's Chromium, headless, loads the page of a short embedded
//! run with no script error, uPlot draws every chart into a `<canvas>`, and a screenshot shows
//! them. Without `chromium` on PATH the test is skipped, unless `CI` is set: then it fails, so CI
//! cannot skip it silently (`scripts/deps.sh` installs it).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fleetstorm::exit::Exit;
use fleetstorm::signals::Interrupts;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
}

/// Chromium headless on `page` with `args`, killed after 60 s. Its output goes through files: a
/// dumped DOM fills a pipe long before the browser exits.
fn browse(chromium: &Path, profile: &Path, page: &Path, args: &[&str]) -> Output {
    let (out, err) = (profile.with_extension("stdout"), profile.with_extension("stderr"));
    let mut child = Command::new(chromium)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 60 s: {}", std::fs::read_to_string(&err).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() }
}

/// What a page's scripts said went wrong: the console's errors (Chromium logs them on stderr as
/// `CONSOLE` lines) and what the page's own catcher put in `#fs-errors`.
fn script_errors(o: &Output) -> Vec<String> {
    let dom = String::from_utf8_lossy(&o.stdout);
    let mut errors: Vec<String> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error")))
        .map(String::from)
        .collect();
    let caught = dom.split("id=\"fs-errors\"").nth(1).unwrap_or("");
    let caught = &caught[caught.find('>').map_or(0, |i| i + 1)..caught.find("</div>").unwrap_or(0)];
    if !caught.trim().is_empty() {
        errors.push(caught.to_string());
    }
    errors
}

#[test]
fn report_html_draws_its_charts_in_a_headless_browser_without_script_errors() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and chromium is not on PATH: install it (scripts/deps.sh)"
        );
        eprintln!("skipped: chromium is not on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    {
        let _g = serial();
        let text = small_scenario("html", 400, "3s")
            + "faults:\n  - {name: kill, at: 1s, kind: broker_kill, restore_after: 1s}\n";
        let scenario = write(dir.path(), "s.yaml", &text);
        let exit = fleetstorm::run_scenario(&run_args(scenario, out.clone()), &Interrupts::default()).unwrap();
        assert_eq!(exit, Exit::Ok);
    }
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // One file, no network: nothing loaded from elsewhere.
    for bad in ["src=\"http", "src='http", "src=http", "href=\"http", "href='http", "url(http", "<link"] {
        assert!(!html.contains(bad), "report.html loads `{bad}...`");
    }
    assert!(html.find("id=verdict") < html.find("<nav class=toc>"), "the verdict comes first, then the contents");
    let plots = html.matches("<div class=plot id=").count();
    assert!(plots >= 5, "throughput, latency, spectrum, lag, harness: {plots} charts");

    let _g = serial();
    let profile = dir.path().join("chromium");
    let dom = browse(&chromium, &profile, &page, &["--dump-dom"]);
    assert!(dom.status.success(), "chromium --dump-dom failed: {}", text(&dom));
    assert_eq!(script_errors(&dom), Vec::<String>::new(), "script errors in report.html");
    let dump = String::from_utf8_lossy(&dom.stdout);
    assert!(dump.contains(&format!("data-charts=\"{plots}\"")), "not every chart was drawn");
    assert!(dump.matches("<canvas").count() >= plots, "uPlot draws each chart on a canvas");

    // The check above catches a script error: the same page with one fails it.
    let broken = dir.path().join("broken.html");
    std::fs::write(&broken, html.replace("</body>", "<script>fleetstormNoSuchFunction();</script></body>")).unwrap();
    let o = browse(&chromium, &profile, &broken, &["--dump-dom"]);
    let errors = script_errors(&o);
    assert!(errors.iter().any(|e| e.contains("fleetstormNoSuchFunction")), "an error went unnoticed: {errors:?}");

    let shot = dir.path().join("shot.png");
    let o =
        browse(&chromium, &profile, &page, &[&format!("--screenshot={}", shot.display()), "--window-size=1400,3000"]);
    assert!(o.status.success(), "chromium --screenshot failed: {}", text(&o));
    assert_eq!(script_errors(&o), Vec::<String>::new(), "script errors in report.html");
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1400, 3000));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).map(|p| &p[..3]).collect();
    let colours: std::collections::HashSet<&[u8]> = pixels.iter().copied().collect();
    let inked = pixels.iter().filter(|p| p.iter().any(|c| *c < 200)).count();
    eprintln!(
        "screenshot {}x{}, {} bytes, {} colours, {:.1} % inked",
        info.width,
        info.height,
        std::fs::metadata(&shot).unwrap().len(),
        colours.len(),
        100.0 * inked as f64 / pixels.len() as f64
    );
    assert!(colours.len() > 200, "the screenshot has {} colours: blank?", colours.len());
    assert!(inked * 100 > pixels.len(), "under 1 % of the screenshot is drawn");
}
