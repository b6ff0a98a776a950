//! The web dashboard's files, built into the binary: plain ES modules with JSDoc types (no
//! bundler, no framework, nothing fetched from elsewhere), a style sheet, an icon, and the one
//! HTML page. The read model serves them (`GET /` and `GET /ui/{asset}`); the API module is
//! `generated/web/api.js`, which `cargo xtask codegen` writes from the OpenAPI documents.
//!
//! Every file under `ui/web/static/` must be listed in [`ASSETS`] (a test checks), so a new
//! module cannot be forgotten; the page is [`index_html`], which names the gateway the
//! dashboard submits to.

/// One file of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its name under `/ui/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $path:literal, $content_type:expr;)*) => {
        /// Every file served under `/ui/`.
        pub const ASSETS: &[Asset] = &[
            $(Asset { name: $name, content_type: $content_type, body: include_bytes!($path) },)*
        ];
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

assets! {
    "api.js" => "../../../generated/web/api.js", JS;
    "app.js" => "../static/app.js", JS;
    "style.css" => "../static/style.css", CSS;
    "icon.svg" => "../static/icon.svg", SVG;
}

/// The page's template; `{{GATEWAY}}` becomes the gateway's URL (or nothing: read-only).
const INDEX: &str = include_str!("../static/index.html");

/// The file called `name` under `/ui/`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The dashboard's page. `gateway_url` is where the browser submits jobs; `None` makes the
/// dashboard read-only (no submit form).
pub fn index_html(gateway_url: Option<&str>) -> String {
    INDEX.replace("{{GATEWAY}}", &escape_attribute(gateway_url.unwrap_or("")))
}

/// A version of the files, for `ETag`: it changes whenever any file does.
pub fn version() -> u64 {
    // FNV-1a over every file, in order.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for bytes in ASSETS
        .iter()
        .map(|a| a.body)
        .chain(std::iter::once(INDEX.as_bytes()))
    {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_static_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("ui/web/static")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name != "index.html")
            .collect();
        files.sort();
        let mut served: Vec<&str> = ASSETS
            .iter()
            .map(|a| a.name)
            .filter(|n| *n != "api.js")
            .collect();
        served.sort();
        assert_eq!(files, served, "list every file of ui/web/static in ASSETS");
        for asset in ASSETS {
            assert!(
                asset
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'),
                "{} must match the contract's asset pattern",
                asset.name
            );
            if asset.name.ends_with(".js") {
                assert_eq!(asset.content_type, JS);
            }
        }
    }

    #[test]
    fn the_page_names_the_gateway_escaped() {
        let page = index_html(Some("http://gw\"><script>"));
        assert!(
            page.contains("content=\"http://gw&quot;&gt;&lt;script&gt;\""),
            "{page}"
        );
        assert!(!page.contains("{{GATEWAY}}"));
        assert!(index_html(None).contains("name=\"observatory-gateway\" content=\"\""));
    }
}
