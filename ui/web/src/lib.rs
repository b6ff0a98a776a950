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
    "actions.js" => "../static/actions.js", JS;
    "chart.js" => "../static/chart.js", JS;
    "dom.js" => "../static/dom.js", JS;
    "format.js" => "../static/format.js", JS;
    "jobs-table.js" => "../static/jobs-table.js", JS;
    "live.js" => "../static/live.js", JS;
    "model.js" => "../static/model.js", JS;
    "router.js" => "../static/router.js", JS;
    "schema-form.js" => "../static/schema-form.js", JS;
    "timeline.js" => "../static/timeline.js", JS;
    "view.js" => "../static/view.js", JS;
    "view-dead-letters.js" => "../static/view-dead-letters.js", JS;
    "view-events.js" => "../static/view-events.js", JS;
    "view-job.js" => "../static/view-job.js", JS;
    "view-jobs.js" => "../static/view-jobs.js", JS;
    "view-overview.js" => "../static/view-overview.js", JS;
    "view-submit.js" => "../static/view-submit.js", JS;
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

    /// The page preloads every module (so the browser fetches them at once instead of one
    /// import level after another) and names no file that is not served.
    #[test]
    fn the_page_preloads_every_module_and_names_only_served_files() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let tag = if asset.name == "app.js" {
                format!("<script type=\"module\" src=\"/ui/{}\">", asset.name)
            } else {
                format!("<link rel=\"modulepreload\" href=\"/ui/{}\">", asset.name)
            };
            assert!(INDEX.contains(&tag), "index.html should have {tag}");
        }
        for (i, _) in INDEX.match_indices("/ui/") {
            let name: String = INDEX[i + 4..].chars().take_while(|c| *c != '"').collect();
            assert!(
                asset(&name).is_some(),
                "index.html names /ui/{name}, which is not served"
            );
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
