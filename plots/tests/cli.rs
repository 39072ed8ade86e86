//! The `plots` binary from fixture CSVs to PNGs and tables: images decode
//! at the asked size and are not blank, the table text is pinned, and bad
//! input fails with exit 2, the file and line, and no image.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn plots(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plots"))
        .args(args)
        .output()
        .expect("running plots")
}

fn ok(args: &[&str]) -> Output {
    let out = plots(args);
    assert!(
        out.status.success(),
        "plots {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails with exit 2; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = plots(args);
    assert_eq!(out.status.code(), Some(2), "plots {args:?} should exit 2");
    String::from_utf8(out.stderr).unwrap()
}

/// Width, height and the set of RGB colours of a PNG.
fn decode(path: &Path) -> (u32, u32, HashSet<[u8; 3]>) {
    let decoder = png::Decoder::new(fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let colours = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, colours)
}

/// The PNG has the size asked for and is a chart, not an empty page:
/// many distinct colours (text antialiasing, grid, series).
fn assert_chart(path: &Path, width: u32, height: u32) -> HashSet<[u8; 3]> {
    let (w, h, colours) = decode(path);
    assert_eq!((w, h), (width, height), "{}", path.display());
    assert!(
        colours.len() > 20,
        "{} has {} colours",
        path.display(),
        colours.len()
    );
    assert!(colours.contains(&[255, 255, 255]), "white background");
    assert!(colours.contains(&[0, 0, 0]), "black text");
    colours
}

const BLUE: [u8; 3] = [0, 114, 178];
const VERMILION: [u8; 3] = [213, 94, 0];

#[test]
fn memory_chart_of_part_2s_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.png");
    ok(&[
        "memory",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let colours = assert_chart(&out, 1024, 640);
    assert!(colours.contains(&BLUE) && colours.contains(&VERMILION));
}

#[test]
fn several_csvs_share_one_chart_a_colour_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("both.png");
    ok(&[
        "memory",
        fixture("c1m-10k.csv").to_str().unwrap(),
        fixture("mochiweb-10k.csv").to_str().unwrap(),
        "--label",
        "c1m",
        "--label",
        "mochiweb",
        "--kernel",
        "both",
        "--series",
        "pss",
        "--size",
        "800x500",
        "--title",
        "Two servers, 10K connections, 1000 msg/s",
        "-o",
        out.to_str().unwrap(),
    ]);
    let colours = assert_chart(&out, 800, 500);
    assert!(colours.contains(&BLUE), "first input in blue");
    assert!(colours.contains(&VERMILION), "second input in vermilion");
}

#[test]
fn too_many_labels_are_refused() {
    let err = fails(&[
        "memory",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "--label",
        "a",
        "--label",
        "b",
        "-o",
        "/nonexistent/never.png",
    ]);
    assert!(err.contains("2 --label given for 1 CSV file(s)"), "{err}");
}

#[test]
fn per_connection_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("per-conn.png");
    ok(&[
        "per-conn",
        fixture("c1m-10k.csv").to_str().unwrap(),
        fixture("mochiweb-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_chart(&out, 1024, 640);
}

#[test]
fn per_connection_threshold_above_the_peak_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("per-conn.png");
    let err = fails(&[
        "per-conn",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "--min-conns",
        "20k",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("c1m-10k.csv: connections only grow from 0 to 10000"),
        "{err}"
    );
    assert!(err.contains("lower --min-conns"), "{err}");
    assert!(!out.exists());
}

#[test]
fn flood_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flood.png");
    ok(&[
        "flood",
        fixture("c1m-flood-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_chart(&out, 1024, 640);
}

#[test]
fn flood_chart_with_msggens_send_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flood-msggen.png");
    ok(&[
        "flood",
        fixture("c1m-flood-10k.csv").to_str().unwrap(),
        "--msggen",
        fixture("c1m-msggen-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_chart(&out, 1024, 640);
    let err = fails(&[
        "flood",
        fixture("c1m-flood-10k.csv").to_str().unwrap(),
        fixture("mochiweb-flood-10k.csv").to_str().unwrap(),
        "--msggen",
        fixture("c1m-msggen-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--msggen goes with one floodtest CSV (got 2)"),
        "{err}"
    );
}

#[test]
fn flood_chart_of_two_servers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flood2.png");
    ok(&[
        "flood",
        fixture("c1m-flood-10k.csv").to_str().unwrap(),
        fixture("mochiweb-flood-10k.csv").to_str().unwrap(),
        "--latency-scale",
        "log",
        "-o",
        out.to_str().unwrap(),
    ]);
    let colours = assert_chart(&out, 1024, 640);
    assert!(colours.contains(&BLUE) && colours.contains(&VERMILION));
}

const ICOMET_TABLE: &str = "| connections | VIRT | RES | PSS | RES per conn | PSS per conn | kernel per conn |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| 0 | 39.2 MiB | 24.2 MiB | 23.3 MiB | - | - | - |
| 100,000 | 309 MiB | 294 MiB | 293 MiB | 2.76 KiB ± 1 B | 2.76 KiB ± 1 B | 9.51 KiB ± 4 B |
| 200,000 | 578 MiB | 563 MiB | 562 MiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 2 B |
| 300,000 | 848 MiB | 833 MiB | 832 MiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 1 B |
| 400,000 | 1.09 GiB | 1.08 GiB | 1.08 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 1 B |
| 500,000 | 1.35 GiB | 1.34 GiB | 1.34 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 1 B |
| 600,000 | 1.62 GiB | 1.60 GiB | 1.60 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 1 B |
| 700,000 | 1.88 GiB | 1.87 GiB | 1.87 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 1 B |
| 800,000 | 2.14 GiB | 2.13 GiB | 2.13 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 0 B |
| 900,000 | 2.41 GiB | 2.39 GiB | 2.39 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 0 B |
| 1,000,000 | 2.67 GiB | 2.66 GiB | 2.66 GiB | 2.76 KiB ± 0 B | 2.76 KiB ± 0 B | 9.50 KiB ± 0 B |

VIRT, RES and PSS are summed over the server's processes (1 at the last row). \
Per connection: growth over the first row divided by the connections added; at the peak, the median over the 6 samples holding 99% of it or more. \
Kernel is Slab plus TCP pages, system-wide: on loopback it includes the clients' sockets too. \
± is half the range each figure moved over those samples, while the connections held still, divided by the connections added: what other activity on the machine can account for.
";

#[test]
fn icomets_table_is_pinned() {
    let out = ok(&[
        "table",
        fixture("icomet-1m.csv").to_str().unwrap(),
        "--step",
        "100k",
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ICOMET_TABLE);
    // The default step gives the same rows here (1M / 10).
    let out = ok(&["table", fixture("icomet-1m.csv").to_str().unwrap()]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), ICOMET_TABLE);
}

#[test]
fn table_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("table.md");
    let run = ok(&[
        "table",
        fixture("icomet-1m.csv").to_str().unwrap(),
        "--step",
        "500k",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(run.stdout.is_empty());
    let text = fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| -"))
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[2].starts_with("| 500,000 | 1.35 GiB | 1.34 GiB |"),
        "{text}"
    );
    assert!(rows[3].starts_with("| 1,000,000 |"), "{text}");
}

/// Writes `text` as a CSV in a temporary directory.
fn csv_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

const MEM_HEADER: &str =
    "unix_ms,elapsed_s,rss_kb,pss_kb,vsz_kb,procs,conns,slab_kb,tcp_mem_kb,mem_available_kb\n";

#[test]
fn a_bad_value_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = csv_file(
        dir.path(),
        "bad.csv",
        &format!(
            "{MEM_HEADER}1,0.0,100,90,200,1,0,5000,10,9000\n2,1.0,12x,90,200,1,5,5000,10,9000\n"
        ),
    );
    let out = dir.path().join("bad.png");
    let err = fails(&["memory", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(err.starts_with("plots: "), "{err}");
    assert!(
        err.contains("bad.csv:3: column rss_kb: invalid digit"),
        "{err}"
    );
    assert!(err.contains("(expected a memlog CSV)"), "{err}");
    assert!(!out.exists(), "no image from bad input");
}

/// NaN or an infinity has no place on an axis: refused with its line (a
/// NaN once made `plots memory` spin forever).
#[test]
fn a_non_finite_value_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let nan = csv_file(
        dir.path(),
        "nan.csv",
        &format!(
            "{MEM_HEADER}1,0.0,100,90,200,1,0,5000,10,9000\n2,NaN,100,90,200,1,5,5000,10,9000\n"
        ),
    );
    let out = dir.path().join("nan.png");
    let err = fails(&["memory", nan.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(
        err.contains("nan.csv:3: column elapsed_s: not a finite number"),
        "{err}"
    );
    assert!(!out.exists(), "no image from bad input");
}

/// One sample, no connections, and counts near `u64::MAX`: charts and
/// tables are drawn (or refused with a reason), never a panic.
#[test]
fn odd_but_valid_csvs_draw_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let one = csv_file(
        dir.path(),
        "one.csv",
        &format!("{MEM_HEADER}1,0.0,100,90,200,1,0,5000,10,9000\n"),
    );
    let png = dir.path().join("one.png");
    ok(&["memory", one.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    assert_chart(&png, 1024, 640);
    let table = String::from_utf8(ok(&["table", one.to_str().unwrap()]).stdout).unwrap();
    assert!(
        table.contains("| 0 | 200 KiB | 100 KiB | 90.0 KiB | - | - | - |"),
        "{table}"
    );
    let err = fails(&[
        "per-conn",
        one.to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(
        err.contains("connections stay at 0 in every sample"),
        "{err}"
    );

    let max = u64::MAX;
    let huge = csv_file(
        dir.path(),
        "huge.csv",
        &format!(
            "{MEM_HEADER}1,0.0,1,1,1,1,0,1,1,1\n2,60.0,{max},{max},{max},1,{max},{max},{max},{max}\n"
        ),
    );
    for args in [
        vec!["table", huge.to_str().unwrap(), "--step", "7"],
        vec!["table", huge.to_str().unwrap()],
        vec![
            "memory",
            huge.to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
        ],
        vec![
            "per-conn",
            huge.to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
        ],
    ] {
        ok(&args);
    }
}

#[test]
fn a_short_row_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = csv_file(dir.path(), "short.csv", &format!("{MEM_HEADER}1,0.0,100\n"));
    let err = fails(&["table", bad.to_str().unwrap()]);
    assert!(
        err.contains("short.csv:2: 3 fields where the header has 10"),
        "{err}"
    );
}

#[test]
fn a_header_only_csv_draws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = csv_file(dir.path(), "empty.csv", MEM_HEADER);
    let out = dir.path().join("empty.png");
    let err = fails(&[
        "memory",
        empty.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("empty.csv: no samples"), "{err}");
    assert!(!out.exists(), "no empty PNG");
    let err = fails(&["table", empty.to_str().unwrap()]);
    assert!(err.contains("empty.csv: no samples"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let err = fails(&["flood", "/nonexistent/flood.csv", "-o", "/tmp/never.png"]);
    assert!(
        err.contains("/nonexistent/flood.csv: No such file"),
        "{err}"
    );
}

#[test]
fn a_csv_of_the_wrong_kind_says_which_kind_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let err = fails(&[
        "memory",
        fixture("c1m-flood-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("c1m-flood-10k.csv:2: missing field `rss_kb` (expected a memlog CSV)"),
        "{err}"
    );
    let err = fails(&[
        "flood",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("(expected a floodtest CSV)"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_unwritable_output_is_named() {
    let err = fails(&[
        "memory",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "-o",
        "/nonexistent/dir/mem.png",
    ]);
    assert!(
        err.contains("writing /nonexistent/dir/mem.png: No such file or directory"),
        "{err}"
    );
}

#[test]
fn only_png_output_is_written() {
    let err = fails(&[
        "memory",
        fixture("c1m-10k.csv").to_str().unwrap(),
        "-o",
        "mem.jpg",
    ]);
    assert!(
        err.contains("mem.jpg: the output must be a .png file"),
        "{err}"
    );
}
