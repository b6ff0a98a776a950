//! `/docs`: a readable HTML page rendered from the bundled OpenAPI document, with no
//! JavaScript and nothing fetched from elsewhere, so it works offline.

use serde_json::Value;
use std::fmt::Write as _;

pub fn render(doc: &Value) -> String {
    let title = text(doc.pointer("/info/title"));
    let version = text(doc.pointer("/info/version"));
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{CSS}</style></head><body>\
         <h1>{t} <small>{v}</small></h1><p>{d}</p><p>Machine-readable contract: <a href=\"openapi.json\">openapi.json</a></p>",
        t = escape(&title),
        v = escape(&version),
        d = escape(&text(doc.pointer("/info/description"))),
    );
    html.push_str("<h2>Operations</h2>");
    if let Some(Value::Object(paths)) = doc.get("paths") {
        for (path, item) in paths {
            let Value::Object(item) = item else { continue };
            for (method, op) in item {
                operation(&mut html, doc, method, path, op);
            }
        }
    }
    html.push_str("<h2>Schemas</h2>");
    if let Some(Value::Object(schemas)) = doc.pointer("/components/schemas") {
        for (name, schema) in schemas {
            let _ = write!(
                html,
                "<section id=\"schema-{n}\"><h3>{n}</h3><p>{}</p>",
                escape(&text(schema.get("description"))),
                n = escape(name)
            );
            if let Some(Value::Object(props)) = schema.get("properties") {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                html.push_str(
                    "<table><tr><th>field</th><th>type</th><th></th><th>description</th></tr>",
                );
                for (prop, p) in props {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(prop),
                        type_of(p),
                        if required.contains(&prop.as_str()) {
                            "required"
                        } else {
                            ""
                        },
                        escape(&text(p.get("description")))
                    );
                }
                html.push_str("</table>");
            } else {
                let _ = write!(html, "<p>{}</p>", type_of(schema));
            }
            html.push_str("</section>");
        }
    }
    html.push_str("</body></html>");
    html
}

fn operation(html: &mut String, doc: &Value, method: &str, path: &str, op: &Value) {
    let _ = write!(
        html,
        "<section class=\"op\"><h3><span class=\"m\">{}</span> <code>{}</code> — {}</h3><p>{}</p>",
        method.to_uppercase(),
        escape(path),
        escape(&text(op.get("summary"))),
        escape(&text(op.get("description")))
    );
    if let Some(Value::Array(params)) = op.get("parameters") {
        html.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th></th><th>description</th></tr>");
        for p in params {
            let p = resolve(doc, p);
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&text(p.get("name"))),
                escape(&text(p.get("in"))),
                p.get("schema").map(type_of).unwrap_or_default(),
                if p.get("required").and_then(Value::as_bool) == Some(true) {
                    "required"
                } else {
                    ""
                },
                escape(&text(p.get("description")))
            );
        }
        html.push_str("</table>");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        let _ = write!(html, "<p>Request body: {}</p>", type_of(body));
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        html.push_str("<ul>");
        for (status, response) in responses {
            let response = resolve(doc, response);
            let body = response
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.iter().next())
                .map(|(media, m)| {
                    format!(
                        "{} {}",
                        escape(media),
                        m.get("schema").map(type_of).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                html,
                "<li><b>{}</b> {} {body}</li>",
                escape(status),
                escape(&text(response.get("description")))
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| doc.pointer(p))
        .unwrap_or(v)
}

fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{n}\">{n}</a>", n = escape(name));
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "array of {}",
            schema.get("items").map(type_of).unwrap_or_default()
        ),
        Some(t) => {
            let format = schema
                .get("format")
                .and_then(Value::as_str)
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            let nullable = if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
                " or null"
            } else {
                ""
            };
            format!("{}{}{nullable}", escape(t), escape(&format))
        }
        None => "any".into(),
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
h1 small{color:#777;font-size:.6em}section{border-top:1px solid #ddd;padding:.5rem 0}.m{font:bold .85em monospace;background:#eef;padding:.1em .4em;border-radius:3px}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}code{font-size:.9em}";

#[cfg(test)]
mod tests {
    #[test]
    fn renders_operations_and_schemas_escaped() {
        let doc = serde_json::json!({
            "info": {"title": "T <x>", "version": "1.0.0"},
            "paths": {"/jobs": {"post": {"summary": "Submit", "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "responses": {"202": {"description": "ok"}}}}},
            "components": {"schemas": {"Job": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "format": "uuid"}}}}}
        });
        let html = super::render(&doc);
        assert!(html.contains("T &lt;x&gt;"));
        assert!(html.contains("<span class=\"m\">POST</span> <code>/jobs</code>"));
        assert!(html.contains("href=\"#schema-Job\""));
        assert!(html.contains("<code>id</code></td><td>string (uuid)</td><td>required"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing may be fetched from elsewhere"
        );
    }
}
