//! The submit form: type (a built-in one offered, any other allowed), payload JSON checked as
//! you type against the built-in type's schema, maxAttempts, an optional idempotency key; and
//! the gateway's error details placed at the fields they point to.

use std::num::NonZeroU64;

use crossterm::event::{KeyCode, KeyEvent};
use serde_json::{Map, Value};

use super::input::{LineInput, TextArea};
use super::protocol::FetchError;
use crate::contracts::event_envelope::IdempotencyKey;
use crate::contracts::job::JobType;
use crate::contracts::job_submission::JobSubmission;
use observatory_validation::ContractValidator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Type,
    Payload,
    MaxAttempts,
    IdempotencyKey,
    Submit,
}

impl Field {
    const ORDER: [Field; 5] = [
        Field::Type,
        Field::Payload,
        Field::MaxAttempts,
        Field::IdempotencyKey,
        Field::Submit,
    ];

    fn step(self, forward: bool) -> Self {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = Self::ORDER.len();
        Self::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// One problem, at the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub message: String,
}

/// What a key did to the form.
#[derive(Debug, PartialEq)]
pub enum FormAction {
    Nothing,
    Close,
    /// Send this (the form is valid).
    Send(JobSubmission, Option<String>),
}

#[derive(Debug, Clone)]
pub struct SubmitForm {
    pub focus: Field,
    pub job_type: LineInput,
    pub payload: TextArea,
    /// The user typed in the payload: changing the type no longer replaces it.
    payload_edited: bool,
    pub max_attempts: LineInput,
    pub idempotency_key: LineInput,
    /// Local checks of the current content.
    pub problems: Vec<Problem>,
    /// The gateway's answer to the last attempt, when it refused.
    pub refused: Option<String>,
    pub sending: bool,
}

impl Default for SubmitForm {
    fn default() -> Self {
        let mut form = Self {
            focus: Field::Type,
            job_type: LineInput::with_text("sleep"),
            payload: TextArea::default(),
            payload_edited: false,
            max_attempts: LineInput::default(),
            idempotency_key: LineInput::default(),
            problems: Vec::new(),
            refused: None,
            sending: false,
        };
        form.type_changed();
        form
    }
}

/// The built-in job types, from the contracts (`schemas/job-types/`).
pub fn built_in_types() -> Vec<&'static str> {
    observatory_cli::built_in_job_types()
        .map(|(name, _)| name)
        .collect()
}

impl SubmitForm {
    pub fn problems_at(&self, field: Field) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.field == field)
    }

    /// A payload that a built-in type accepts: each required property at its smallest value.
    fn template(job_type: &str) -> Option<String> {
        let (_, info) = observatory_cli::built_in_job_types().find(|(n, _)| *n == job_type)?;
        let schema: Value = serde_json::from_str(info.schema).ok()?;
        let mut payload = Map::new();
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            let property = schema.pointer(&format!("/properties/{name}"));
            let value = match property.and_then(|p| p.get("type")).and_then(Value::as_str) {
                Some("integer" | "number") => property
                    .and_then(|p| p.get("minimum"))
                    .cloned()
                    .unwrap_or(Value::from(0)),
                Some("string") => Value::from(""),
                Some("boolean") => Value::from(false),
                Some("array") => Value::Array(Vec::new()),
                _ => Value::Object(Map::new()),
            };
            payload.insert(name.to_owned(), value);
        }
        serde_json::to_string_pretty(&Value::Object(payload)).ok()
    }

    fn type_changed(&mut self) {
        if !self.payload_edited {
            let template = Self::template(self.job_type.text().trim());
            self.payload = TextArea::with_text(template.as_deref().unwrap_or("{}"));
        }
        self.check();
    }

    /// Cycles the type through the built-in ones.
    fn cycle_type(&mut self, forward: bool) {
        let types = built_in_types();
        if types.is_empty() {
            return;
        }
        let current = types.iter().position(|t| *t == self.job_type.text().trim());
        let next = match (current, forward) {
            (Some(i), true) => (i + 1) % types.len(),
            (Some(i), false) => (i + types.len() - 1) % types.len(),
            (None, _) => 0,
        };
        self.job_type.set(types[next]);
        self.type_changed();
    }

    /// Checks everything locally, as the gateway and the processor will; fills `problems`
    /// and returns the request when there are none.
    pub fn check(&mut self) -> Option<(JobSubmission, Option<String>)> {
        self.problems.clear();
        let mut problem = |field, message: String| self.problems.push(Problem { field, message });
        let type_text = self.job_type.text().trim().to_owned();
        let job_type = match type_text.parse::<JobType>() {
            Ok(t) => Some(t),
            Err(_) => {
                problem(
                    Field::Type,
                    "a type name: a-z first, then a-z, 0-9 and -, at most 64".into(),
                );
                None
            }
        };
        let payload = match observatory_cli::parse_payload(&self.payload.text()) {
            Ok(payload) => Some(payload),
            Err(error) => {
                let message = error.to_string();
                problem(
                    Field::Payload,
                    message
                        .strip_prefix("--payload ")
                        .unwrap_or(&message)
                        .to_owned(),
                );
                None
            }
        };
        if let (Some(payload), Some((_, info))) = (
            &payload,
            observatory_cli::built_in_job_types().find(|(n, _)| *n == type_text),
        ) && let Ok(validator) = ContractValidator::cached(info)
            && let Err(violations) = validator.validate(&Value::Object(payload.clone()))
        {
            for v in violations {
                problem(Field::Payload, v.to_string());
            }
        }
        let max_attempts = match self.max_attempts.text().trim() {
            "" => Some(None),
            text => match text.parse::<u64>() {
                Ok(n @ 1..=100) => Some(NonZeroU64::new(n)),
                _ => {
                    problem(
                        Field::MaxAttempts,
                        "a number from 1 to 100 (empty: 3)".into(),
                    );
                    None
                }
            },
        };
        let key = match self.idempotency_key.text().trim() {
            "" => Some(None),
            text => match IdempotencyKey::try_from(text) {
                Ok(_) => Some(Some(text.to_owned())),
                Err(error) => {
                    problem(Field::IdempotencyKey, error.to_string());
                    None
                }
            },
        };
        let (Some(type_), Some(payload), Some(max_attempts), Some(key)) =
            (job_type, payload, max_attempts, key)
        else {
            return None;
        };
        if !self.problems.is_empty() {
            return None;
        }
        Some((
            JobSubmission {
                job_id: None,
                max_attempts,
                payload,
                type_,
            },
            key,
        ))
    }

    /// The gateway refused: its message, and each detail at the field its pointer names.
    pub fn refused_by_gateway(&mut self, error: &FetchError) {
        self.sending = false;
        self.problems.clear();
        match error {
            FetchError::Api { status, error } => {
                self.refused = Some(format!(
                    "gateway: {status} {}: {}",
                    error.code.as_str(),
                    error.message.as_str()
                ));
                for detail in &error.details {
                    let pointer = detail.pointer.as_deref().unwrap_or("");
                    let field = if error.code.contains("idempotency") {
                        Field::IdempotencyKey
                    } else if pointer.starts_with("/maxAttempts") {
                        Field::MaxAttempts
                    } else if pointer.starts_with("/type") {
                        Field::Type
                    } else {
                        Field::Payload
                    };
                    let at = if pointer.is_empty() { "/" } else { pointer };
                    self.problems.push(Problem {
                        field,
                        message: format!("{at}: {}", detail.message),
                    });
                }
            }
            other => self.refused = Some(format!("gateway: {other}")),
        }
    }

    /// Applies a key. Tab and Shift-Tab move between fields; Up/Down on the type cycle the
    /// built-in types; Enter on the button (or Ctrl-S anywhere) sends; Esc closes.
    pub fn key(&mut self, key: &KeyEvent) -> FormAction {
        use crossterm::event::KeyModifiers;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return FormAction::Close,
            KeyCode::Char('s') if ctrl => return self.send(),
            KeyCode::Tab => self.focus = self.focus.step(true),
            KeyCode::BackTab => self.focus = self.focus.step(false),
            KeyCode::Enter if self.focus == Field::Submit => return self.send(),
            KeyCode::Enter if self.focus != Field::Payload => self.focus = self.focus.step(true),
            KeyCode::Up | KeyCode::Down if self.focus == Field::Type => {
                self.cycle_type(key.code == KeyCode::Down);
            }
            KeyCode::Up if self.focus != Field::Payload => self.focus = self.focus.step(false),
            KeyCode::Down if self.focus != Field::Payload => self.focus = self.focus.step(true),
            _ => {
                let edited = match self.focus {
                    Field::Type => self.job_type.edit(key),
                    Field::Payload => self.payload.edit(key),
                    Field::MaxAttempts => self.max_attempts.edit(key),
                    Field::IdempotencyKey => self.idempotency_key.edit(key),
                    Field::Submit => false,
                };
                if edited {
                    self.edited();
                }
            }
        }
        FormAction::Nothing
    }

    /// Pasted text goes into the focused field.
    pub fn paste(&mut self, text: &str) {
        match self.focus {
            Field::Type => self.job_type.insert_str(text),
            Field::Payload => self.payload.insert_str(text),
            Field::MaxAttempts => self.max_attempts.insert_str(text),
            Field::IdempotencyKey => self.idempotency_key.insert_str(text),
            Field::Submit => return,
        }
        self.edited();
    }

    fn edited(&mut self) {
        self.refused = None;
        match self.focus {
            Field::Type => self.type_changed(),
            Field::Payload => {
                self.payload_edited = true;
                self.check();
            }
            _ => {
                self.check();
            }
        }
    }

    fn send(&mut self) -> FormAction {
        if self.sending {
            return FormAction::Nothing;
        }
        match self.check() {
            Some((submission, key)) => {
                self.sending = true;
                self.refused = None;
                FormAction::Send(submission, key)
            }
            None => {
                if let Some(first) = self.problems.first() {
                    self.focus = first.field;
                }
                FormAction::Nothing
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // a form is edited after it opens
mod tests {
    use super::*;

    fn press(form: &mut SubmitForm, code: KeyCode) -> FormAction {
        form.key(&KeyEvent::from(code))
    }

    #[test]
    fn the_payload_follows_the_type_until_it_is_edited() {
        let mut form = SubmitForm::default();
        assert_eq!(form.payload.text(), "{\n  \"durationMs\": 0\n}");
        assert!(form.problems.is_empty(), "{:?}", form.problems);
        press(&mut form, KeyCode::Down);
        assert_eq!(form.job_type.text(), "compute");
        assert_eq!(form.payload.text(), "{\n  \"iterations\": 1\n}");
        press(&mut form, KeyCode::Tab);
        form.paste(" ");
        press(&mut form, KeyCode::BackTab);
        press(&mut form, KeyCode::Down);
        assert_eq!(form.job_type.text(), "fail");
        assert_eq!(
            form.payload.text(),
            "{\n  \"iterations\": 1\n} ",
            "kept once edited"
        );
    }

    #[test]
    fn problems_are_found_locally_and_placed_at_their_field() {
        let mut form = SubmitForm::default();
        form.payload = TextArea::with_text(r#"{"durationMs": -5}"#);
        form.max_attempts.set("0");
        form.idempotency_key.set("x");
        assert!(form.check().is_none());
        let at = |field| form.problems_at(field).count();
        assert_eq!(at(Field::Payload), 1, "{:?}", form.problems);
        assert!(
            form.problems[0].message.starts_with("/durationMs"),
            "{:?}",
            form.problems
        );
        assert_eq!(at(Field::MaxAttempts), 1);
        assert_eq!(at(Field::IdempotencyKey), 0);
        form.payload = TextArea::with_text("{");
        form.check();
        assert!(
            form.problems_at(Field::Payload)
                .next()
                .expect("a problem")
                .message
                .contains("not valid JSON")
        );
        // Sending an invalid form focuses its first problem instead.
        form.focus = Field::Submit;
        assert_eq!(press(&mut form, KeyCode::Enter), FormAction::Nothing);
        assert_eq!(form.focus, Field::Payload);
    }

    #[test]
    fn any_type_name_is_allowed_and_sent_as_typed() {
        let mut form = SubmitForm::default();
        form.job_type.set("resize-image");
        form.payload = TextArea::with_text(r#"{"w": 2}"#);
        form.max_attempts.set("7");
        form.idempotency_key.set("order-42");
        form.focus = Field::Submit;
        match press(&mut form, KeyCode::Enter) {
            FormAction::Send(submission, key) => {
                assert_eq!(submission.type_.as_str(), "resize-image");
                assert_eq!(submission.max_attempts.map(NonZeroU64::get), Some(7));
                assert_eq!(key.as_deref(), Some("order-42"));
            }
            other => panic!("expected a submission, got {other:?}"),
        }
        assert!(form.sending);
        assert_eq!(
            press(&mut form, KeyCode::Enter),
            FormAction::Nothing,
            "once"
        );
    }
}
