//! The one font plots draw text with.
//!
//! plotters is built with `ab_glyph`, which never looks at system font configuration: a font has to
//! be registered by name before any text is measured or drawn, or layout fails. We register exactly
//! one face under plotters' `"sans-serif"` family (so the SVG says `font-family="sans-serif"` and a
//! viewer substitutes its own), once per process, chosen in this order:
//!
//! 1. `$RAWRXD_FONT`, a TrueType/OpenType file — if set, it must load; a bad one is an error;
//! 2. DejaVu Sans (or Liberation Sans) at the usual system paths;
//! 3. the DejaVu Sans subset embedded in the binary (`assets/fonts/`, 39 KB), so a PNG always has
//!    text; it renders byte-identically to the system copy.
//!
//! The choice is made on the first call and kept for the life of the process; the font bytes are
//! leaked once because plotters wants `&'static [u8]`. plotters uses the registration for its own
//! text measuring; our backends (`glyphs.rs`) measure and rasterise with the same bytes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::{Error, Result};

/// Environment variable naming a font file that overrides the search.
pub const FONT_ENV: &str = "RAWRXD_FONT";

/// Family name the font is registered under; every text style in `report` uses it.
pub(crate) const FAMILY: &str = "sans-serif";

/// The embedded fallback: DejaVu Sans cut to the characters plots use (see assets/fonts/README.md).
pub(crate) static EMBEDDED: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");

/// System locations tried in order when `$RAWRXD_FONT` is not set (Debian/Ubuntu, Fedora, Arch,
/// macOS, Windows).
const SYSTEM_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
    "C:\\Windows\\Fonts\\DejaVuSans.ttf",
];

/// Where the plot font came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FontSource {
    /// The file named by `$RAWRXD_FONT`.
    Env(PathBuf),
    /// A font found at a system path.
    System(PathBuf),
    /// The subset compiled into the binary.
    Embedded,
}

impl fmt::Display for FontSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FontSource::Env(p) => write!(f, "{} (${FONT_ENV})", p.display()),
            FontSource::System(p) => write!(f, "{}", p.display()),
            FontSource::Embedded => f.write_str("embedded DejaVu Sans subset"),
        }
    }
}

/// The chosen font and its bytes (registered with plotters, and rasterised by `glyphs.rs`).
type Chosen = (FontSource, &'static [u8]);

static CHOSEN: OnceLock<std::result::Result<Chosen, String>> = OnceLock::new();

/// Registers the plot font if that has not happened yet and says which one is in use.
///
/// Every drawing entry point in `report` calls this first. Errors only when `$RAWRXD_FONT` names
/// a file that cannot be read or is not a font; the error is remembered for the process.
pub fn ensure_font() -> Result<&'static FontSource> {
    chosen().map(|c| &c.0)
}

/// The bytes of the font [`ensure_font`] chose.
pub(crate) fn font_bytes() -> Result<&'static [u8]> {
    chosen().map(|c| c.1)
}

fn chosen() -> Result<&'static Chosen> {
    CHOSEN
        .get_or_init(choose_and_register)
        .as_ref()
        .map_err(|msg| Error::Plot(msg.clone()))
}

fn choose_and_register() -> std::result::Result<Chosen, String> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("${FONT_ENV}={}: {e}", path.display()))?;
        let bytes = leak(bytes);
        register(bytes).map_err(|()| {
            format!(
                "${FONT_ENV}={}: not a TrueType/OpenType font",
                path.display()
            )
        })?;
        return Ok((FontSource::Env(path), bytes));
    }
    for candidate in SYSTEM_FONTS {
        let path = Path::new(candidate);
        // A missing or broken system font is not the user's problem: try the next one.
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let bytes = leak(bytes);
        if register(bytes).is_ok() {
            return Ok((FontSource::System(path.to_path_buf()), bytes));
        }
        log::warn!("{}: not a usable font, trying the next", path.display());
    }
    register(EMBEDDED).map_err(|()| "embedded font failed to load".to_string())?;
    Ok((FontSource::Embedded, EMBEDDED))
}

/// Font bytes live for the rest of the process; this happens at most once per candidate.
fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

fn register(bytes: &'static [u8]) -> std::result::Result<(), ()> {
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| ())?;
    // Bold titles fall back to the normal face inside plotters, but register it explicitly so
    // the lookup never depends on that fallback.
    plotters::style::register_font(FAMILY, FontStyle::Bold, bytes).map_err(|_| ())
}
