//! Helpers shared by the report crate's integration tests: fixtures, output directories,
//! and checks on SVG, PNG and results files.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

pub mod fixtures;

use std::path::{Path, PathBuf};

use feedbench_report::Results;
use serde_json::Value;

/// The crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A committed fixture file.
pub fn fixture_path(name: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(name)
}

/// A fresh, empty output directory for one test, under `tests/out/` (ignored by git).
pub fn out_dir(test: &str) -> PathBuf {
    let dir = crate_dir().join("tests/out").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear old test output");
    }
    std::fs::create_dir_all(&dir).expect("create test output directory");
    dir
}

/// Writes a results document to `dir/name` and returns its path.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).expect("serialise results");
    std::fs::write(&path, text).expect("write results");
    path
}

/// Parses a results document with the crate's own types.
pub fn parse(value: &Value) -> Results {
    Results::from_json(&value.to_string()).expect("fixture parses as results")
}

/// Panics unless `text` is well-formed XML with an `<svg>` root element.
pub fn assert_well_formed_svg(text: &str, what: &str) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    root = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "{what} is not well-formed XML at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!(depth, 0, "{what}: unclosed elements");
    assert_eq!(
        root.as_deref(),
        Some("svg"),
        "{what}: root element is not <svg>"
    );
}

/// A decoded PNG: size and RGB pixels.
pub struct Png {
    pub width: u32,
    pub height: u32,
    /// RGB triples, row by row.
    pub pixels: Vec<[u8; 3]>,
}

impl Png {
    /// Reads a PNG file (RGB or RGBA, 8 bits).
    pub fn read(path: &Path) -> Png {
        let file =
            std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let decoder = png::Decoder::new(file);
        let mut reader = decoder.read_info().expect("PNG header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("PNG frame");
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("{}: unexpected colour type {other:?}", path.display()),
        };
        assert_eq!(
            info.bit_depth,
            png::BitDepth::Eight,
            "{}: 8-bit PNG",
            path.display()
        );
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Png {
            width: info.width,
            height: info.height,
            pixels,
        }
    }

    /// The share of pixels that are not white.
    pub fn ink_share(&self) -> f64 {
        let ink = self
            .pixels
            .iter()
            .filter(|p| **p != [255, 255, 255])
            .count();
        ink as f64 / self.pixels.len() as f64
    }

    /// How many pixels are within `tolerance` (per channel) of `color`.
    pub fn count_near(&self, color: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| p.iter().zip(color).all(|(a, b)| a.abs_diff(b) <= tolerance))
            .count()
    }
}
