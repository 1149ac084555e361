//! Secret values out of every line the plugin shows: the value itself, the password part of a
//! URL, its JSON-escaped form and its base64 forms (standard and URL-safe, padded or not, and
//! inside a larger encoded blob), each shown as `[secret KEY]`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Values shorter than this are not masked: `1`, `yes` or `on` would garble every line.
pub(crate) const SHORTEST_MASKED: usize = 4;

/// Values shorter than this are masked only as a whole word (between characters that are not
/// letters or digits): `abcd` in `postgres://u:abcd@h`, not in `abcdef`.
const SHORTEST_ANYWHERE: usize = 6;

/// A base64 run shorter than this (from inside a larger blob) is not masked: too likely by
/// chance.
const SHORTEST_INNER_BASE64: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mask {
    text: Vec<u8>,
    label: String,
    whole_word: bool,
}

/// The values to mask, longest first so that a value inside another is not masked half-way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Masks(Vec<Mask>);

impl Masks {
    /// From now on, `value` in any of its forms shows as `[secret KEY]`.
    pub(crate) fn add(&mut self, key: &str, value: &[u8]) {
        let label = format!("[secret {key}]");
        for form in forms(value) {
            if form.len() < SHORTEST_MASKED || self.0.iter().any(|m| m.text == form) {
                continue;
            }
            let whole_word = form.len() < SHORTEST_ANYWHERE;
            self.0.push(Mask {
                text: form,
                label: label.clone(),
                whole_word,
            });
        }
        self.0.sort_by_key(|m| std::cmp::Reverse(m.text.len()));
    }

    /// The longest form masked, in bytes: what a stream holds back so as not to cut one in two.
    pub(crate) fn longest(&self) -> usize {
        self.0.first().map_or(0, |m| m.text.len())
    }

    pub(crate) fn mask_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    pub(crate) fn mask(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        'scan: while i < text.len() {
            if self.0.is_empty() {
                break;
            }
            for m in &self.0 {
                if self.matches_at(text, i, m) {
                    out.extend_from_slice(m.label.as_bytes());
                    i += m.text.len();
                    continue 'scan;
                }
            }
            out.push(text[i]);
            i += 1;
        }
        out.extend_from_slice(&text[i..]);
        out
    }

    fn matches_at(&self, text: &[u8], i: usize, m: &Mask) -> bool {
        if !text[i..].starts_with(&m.text) {
            return false;
        }
        if !m.whole_word {
            return true;
        }
        let word = |b: u8| b.is_ascii_alphanumeric();
        let before = i.checked_sub(1).map(|j| text[j]);
        let after = text.get(i + m.text.len()).copied();
        !before.is_some_and(word) && !after.is_some_and(word)
    }

    /// Where a complete value ends when one starts before `at` and ends after it, so that a
    /// stream cut there would show its two halves.
    fn straddling(&self, text: &[u8], at: usize) -> Option<usize> {
        let from = at.saturating_sub(self.longest());
        (from..at).find_map(|i| {
            self.0
                .iter()
                .find(|m| self.matches_at(text, i, m))
                .map(|m| i + m.text.len())
                .filter(|end| *end > at)
        })
    }
}

/// Every form of `value` worth masking.
fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    if let Ok(text) = std::str::from_utf8(value) {
        if let Some(password) = url_password(text) {
            out.push(password.as_bytes().to_vec());
            let decoded = percent_decoded(password);
            out.push(decoded);
        }
        let json = serde_json::to_string(text).unwrap_or_default();
        out.push(json.trim_matches('"').as_bytes().to_vec());
    }
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(value).into_bytes());
    }
    // Inside a larger blob the value's bytes start at any of three places in a base64 group;
    // the characters that hold only its bytes are the same whatever surrounds them.
    for offset in 1..3 {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(value);
        let whole_groups = shifted.len() / 3 * 4;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&shifted);
            if let Some(inner) = encoded.get(4..whole_groups)
                && inner.len() >= SHORTEST_INNER_BASE64
            {
                out.push(inner.as_bytes().to_vec());
            }
        }
    }
    let whole_groups = value.len() / 3 * 4;
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        let encoded = engine.encode(value);
        if let Some(inner) = encoded.get(..whole_groups)
            && inner.len() >= SHORTEST_INNER_BASE64
        {
            out.push(inner.as_bytes().to_vec());
        }
    }
    out
}

/// The password of `scheme://user:password@host/...`, when there is one.
fn url_password(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Masks a stream (a remote command's output) without cutting a value in two: complete lines
/// go out at once, a partial line waits for its end, for [`StreamMask::flush`] (the stream
/// paused or ended), or until it is longer than [`HELD_AT_MOST`].
pub(crate) struct StreamMask {
    masks: Masks,
    pending: Vec<u8>,
}

/// A partial line longer than this goes out but for its last bytes (binary output, a progress
/// bar without newlines).
const HELD_AT_MOST: usize = 64 * 1024;

impl StreamMask {
    pub(crate) fn new(masks: Masks) -> Self {
        Self {
            masks,
            pending: Vec::new(),
        }
    }

    /// What can be shown now of everything received so far, masked.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let cut = match self.pending.iter().rposition(|b| *b == b'\n') {
            Some(newline) => newline + 1,
            None if self.pending.len() > HELD_AT_MOST => {
                let at = self.pending.len() - self.masks.longest().min(self.pending.len());
                self.masks.straddling(&self.pending, at).unwrap_or(at)
            }
            None => return Vec::new(),
        };
        let rest = self.pending.split_off(cut);
        let ready = std::mem::replace(&mut self.pending, rest);
        self.masks.mask(&ready)
    }

    /// Everything still held, masked.
    pub(crate) fn flush(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.pending);
        self.masks.mask(&held)
    }
}

impl kubectl_rails_exec::session::OutputFilter for StreamMask {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        StreamMask::push(self, chunk)
    }
    fn flush(&mut self) -> Vec<u8> {
        StreamMask::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(pairs: &[(&str, &str)]) -> Masks {
        let mut m = Masks::default();
        for (k, v) in pairs {
            m.add(k, v.as_bytes());
        }
        m
    }

    #[test]
    fn every_form_of_a_value_is_masked() {
        let url = "postgres://app:Pa55%2Fword@db:5432/app?sslmode=require";
        let m = masks(&[("URL", url), ("PIN", "4711"), ("TOKEN", "tok+/en?>~value")]);
        let blob = STANDARD.encode(b"{\"auths\":{\"x\":\"tok+/en?>~value\"}}");
        let cases = [
            (url.to_string(), "[secret URL]"),
            ("password: Pa55%2Fword".into(), "password: [secret URL]"),
            ("decoded: Pa55/word!".into(), "decoded: [secret URL]!"),
            ("pin=4711.".into(), "pin=[secret PIN]."),
            ("order 47110 stays".into(), "order 47110 stays"),
            ("a short one: 1".into(), "a short one: 1"),
            (
                format!("std {}", STANDARD.encode("tok+/en?>~value")),
                "std [secret TOKEN]",
            ),
            (
                format!("url-safe {}", URL_SAFE_NO_PAD.encode("tok+/en?>~value")),
                "url-safe [secret TOKEN]",
            ),
            (
                "json \"x\": \"tok+/en?>~value\"".into(),
                "json \"x\": \"[secret TOKEN]\"",
            ),
        ];
        for (text, shown) in cases {
            assert_eq!(m.mask_str(&text), shown, "{text}");
        }
        let inside = m.mask_str(&blob);
        assert!(inside.contains("[secret TOKEN]"), "inside a blob: {inside}");
    }

    #[test]
    fn a_json_escaped_value_is_masked() {
        let m = masks(&[("K", "quote\"and\\slash")]);
        assert_eq!(
            m.mask_str(r#"{"K":"quote\"and\\slash"}"#),
            r#"{"K":"[secret K]"}"#
        );
    }

    #[test]
    fn a_stream_never_shows_a_value_cut_across_reads() {
        let m = masks(&[("K", "Split-Value-123")]);
        let mut s = StreamMask::new(m);
        let mut shown = Vec::new();
        for chunk in [
            &b"start Split-"[..],
            b"Value",
            b"-123 end\npartial Spl",
            b"it-Value-123",
        ] {
            shown.extend(s.push(chunk));
        }
        assert_eq!(shown, b"start [secret K] end\n");
        shown.extend(s.flush());
        assert_eq!(shown, b"start [secret K] end\npartial [secret K]");
    }

    #[test]
    fn a_long_line_goes_out_without_cutting_a_value() {
        let value = "Long-Line-Value-42";
        let mut s = StreamMask::new(masks(&[("K", value)]));
        let mut line = vec![b'x'; HELD_AT_MOST];
        line.extend_from_slice(&value.as_bytes()[..5]);
        let mut shown = s.push(&line);
        assert!(shown.len() < HELD_AT_MOST + 5, "the value's start is held");
        shown.extend(s.push(&value.as_bytes()[5..]));
        shown.extend(s.flush());
        let text = String::from_utf8(shown).unwrap();
        assert!(
            text.ends_with("x[secret K]"),
            "{}",
            &text[text.len() - 20..]
        );
    }
}
