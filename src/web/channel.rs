//! The cross-tab channel: a `BroadcastChannel` per storage name, closed when dropped.
//! Messages are `{stored: [first, last]}` (a tab wrote these seqs), `{deleted: [seq…]}`
//! (the sender acknowledged or dropped these), `{flush: true}` (please send now),
//! `{backoff: retry_at}` (the sender waits until then) and `{tab: true|false}` (a tab
//! opened or is closing).

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

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
}

pub struct Channel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Opens the channel `name`; `None` where `BroadcastChannel` is missing.
    pub fn open(name: &str, mut on_message: impl FnMut(Message) + 'static) -> Option<Channel> {
        let channel = BroadcastChannel::new(name).ok()?;
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(message) = decode(&event.data()) {
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
    field("flush").map(|_| Message::Flush)
}
