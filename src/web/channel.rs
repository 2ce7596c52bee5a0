//! The cross-tab channel: a `BroadcastChannel` per storage name, closed when dropped.
//! Messages are `{stored: [first, last]}` (a tab stored these keys and no keepalive post of
//! its own carries them), `{deleted: [key…]}`
//! (the sender acknowledged or dropped these), `{flush: true}` (please send now),
//! `{backoff: retry_at}` (the sender waits until then), `{tab: true|false}` (a tab
//! opened or is closing), `{sender: true}` (a tab took over sending), `{handover: [tab,
//! [line…]]}` (a tab offers the sender events it holds in memory only) and `{adopted: [tab,
//! [key…]]}` (the sender stored them).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, Event, MessageEvent};

use crate::core::Key;

/// What one tab tells the others.
pub enum Message {
    Stored {
        first: Key,
        last: Key,
    },
    Deleted(Vec<Key>),
    Flush,
    BackingOff(u64),
    /// A tab opened (`true`) or is closing (`false`).
    Tab(bool),
    NewSender,
    HandOver {
        tab: String,
        lines: Vec<String>,
    },
    Adopted {
        tab: String,
        keys: Vec<Key>,
    },
}

pub struct Channel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(Event)>,
}

impl Channel {
    /// Opens the channel `name`; `None` where `BroadcastChannel` is missing.
    pub fn open(name: &str, mut on_message: impl FnMut(Message) + 'static) -> Option<Channel> {
        let channel = BroadcastChannel::new(name).ok()?;
        // Typed as a plain Event, as IndexedDB's callbacks are: one closure type, one glue.
        let handler = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            // A `message` listener only ever gets a MessageEvent.
            if let Some(message) = decode(&event.unchecked_into::<MessageEvent>().data()) {
                on_message(message);
            }
        });
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        Some(Channel {
            channel,
            _on_message: handler,
        })
    }

    pub fn post(&self, message: &Message) {
        let _ = self.channel.post_message(&encode(message));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

fn keys_to_js(keys: &[Key]) -> JsValue {
    keys.iter()
        .map(|&k| JsValue::from_f64(k as f64))
        .collect::<Array>()
        .into()
}

fn encode(message: &Message) -> JsValue {
    let object = Object::new();
    let (name, value) = match message {
        Message::Stored { first, last } => ("stored", keys_to_js(&[*first, *last])),
        Message::Deleted(keys) => ("deleted", keys_to_js(keys)),
        Message::Flush => ("flush", JsValue::TRUE),
        Message::BackingOff(retry_at) => ("backoff", JsValue::from_f64(*retry_at as f64)),
        Message::Tab(open) => ("tab", JsValue::from_bool(*open)),
        Message::NewSender => ("sender", JsValue::TRUE),
        Message::HandOver { tab, lines } => (
            "handover",
            Array::of2(
                &tab.into(),
                &lines.iter().map(JsValue::from).collect::<Array>(),
            )
            .into(),
        ),
        Message::Adopted { tab, keys } => {
            ("adopted", Array::of2(&tab.into(), &keys_to_js(keys)).into())
        }
    };
    let _ = Reflect::set(&object, &name.into(), &value);
    object.into()
}

fn keys_from_js(value: &JsValue) -> Vec<Key> {
    Array::from(value)
        .iter()
        .filter_map(|v| v.as_f64())
        .map(|n| n as Key)
        .collect()
}

fn decode(data: &JsValue) -> Option<Message> {
    let field = |name: &str| {
        Reflect::get(data, &name.into())
            .ok()
            .filter(|v| !v.is_undefined())
    };
    if let Some(stored) = field("stored") {
        let keys = keys_from_js(&stored);
        return Some(Message::Stored {
            first: *keys.first()?,
            last: *keys.get(1)?,
        });
    }
    if let Some(deleted) = field("deleted") {
        return Some(Message::Deleted(keys_from_js(&deleted)));
    }
    if let Some(retry_at) = field("backoff").and_then(|v| v.as_f64()) {
        return Some(Message::BackingOff(retry_at as u64));
    }
    if let Some(open) = field("tab").and_then(|v| v.as_bool()) {
        return Some(Message::Tab(open));
    }
    if field("sender").is_some() {
        return Some(Message::NewSender);
    }
    // [tab, list]
    let addressed = |name: &str| {
        let pair = Array::from(&field(name)?);
        Some((pair.get(0).as_string()?, pair.get(1)))
    };
    if let Some((tab, lines)) = addressed("handover") {
        let lines = Array::from(&lines)
            .iter()
            .filter_map(|l| l.as_string())
            .collect();
        return Some(Message::HandOver { tab, lines });
    }
    if let Some((tab, keys)) = addressed("adopted") {
        return Some(Message::Adopted {
            tab,
            keys: keys_from_js(&keys),
        });
    }
    field("flush").map(|_| Message::Flush)
}
