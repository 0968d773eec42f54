//! Task events to containerd: `Events.Forward` over its ttrpc socket
//! (TTRPC_ADDRESS), one short blocking call each, made after the loop's
//! answers are sent.

use std::cell::RefCell;

use containerd_shim_protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM,
    TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
#[cfg(test)]
use containerd_shim_protos::protobuf::MessageFull;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::topics;

pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut t = Timestamp::new();
    t.seconds = d.as_secs() as i64;
    t.nanos = d.subsec_nanos() as i32;
    t
}

/// An event: its topic and its protobuf type name (the Any type URL
/// containerd decodes it by). The names are spelled out rather than taken
/// from the protobuf descriptors: building those (reflection) costs the
/// shim a few hundred KB of heap and code it otherwise never touches; the
/// test below checks the names against the descriptors.
pub trait Event: Message {
    const TOPIC: &'static str;
    const TYPE: &'static str;
}

macro_rules! event {
    ($($t:ident => $topic:ident),* $(,)?) => {
        $(impl Event for $t {
            const TOPIC: &'static str = topics::$topic;
            const TYPE: &'static str = concat!("containerd.events.", stringify!($t));
        })*
        #[cfg(test)]
        #[test]
        fn type_names_match_the_descriptors() {
            $(assert_eq!(<$t as MessageFull>::descriptor().full_name(), <$t as Event>::TYPE);)*
        }
    };
}

event!(
    TaskCreate => TASK_CREATE_EVENT_TOPIC,
    TaskStart => TASK_START_EVENT_TOPIC,
    TaskExit => TASK_EXIT_EVENT_TOPIC,
    TaskOOM => TASK_OOM_EVENT_TOPIC,
    TaskExecAdded => TASK_EXEC_ADDED_EVENT_TOPIC,
    TaskExecStarted => TASK_EXEC_STARTED_EVENT_TOPIC,
    TaskDelete => TASK_DELETE_EVENT_TOPIC,
    TaskPaused => TASK_PAUSED_EVENT_TOPIC,
    TaskResumed => TASK_RESUMED_EVENT_TOPIC,
    TaskCheckpointed => TASK_CHECKPOINTED_EVENT_TOPIC,
);

pub struct Publisher {
    /// containerd's ttrpc socket; empty: events are dropped (tests).
    address: String,
    namespace: String,
    /// Encoded ForwardRequests and their topics, in order, sent by
    /// [`Publisher::flush`] once the answers of the loop's turn are out.
    queue: RefCell<Vec<(&'static str, Vec<u8>)>>,
}

impl Publisher {
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            queue: RefCell::new(Vec::new()),
        }
    }

    /// Queue `event` for [`Publisher::flush`].
    pub fn publish<E: Event>(&self, event: E) {
        if self.address.is_empty() {
            return;
        }
        let any = Any {
            type_url: E::TYPE.to_string(),
            value: event.write_to_bytes().unwrap_or_default(),
            ..Default::default()
        };
        let req = ForwardRequest {
            envelope: Some(Envelope {
                timestamp: Some(now()).into(),
                namespace: self.namespace.clone(),
                topic: E::TOPIC.to_string(),
                event: Some(any).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let payload = req.write_to_bytes().unwrap_or_default();
        self.queue.borrow_mut().push((E::TOPIC, payload));
    }

    /// Forward the queued events, in order; a failure is logged, not
    /// returned (containerd restarting must not fail the task operation
    /// that caused it).
    pub fn flush(&self) {
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        let service = "containerd.services.events.ttrpc.v1.Events";
        for (topic, payload) in queued {
            let t0 = std::time::Instant::now();
            match crate::wire::call(&self.address, service, "Forward", payload) {
                Err(e) => crate::server::log(&format!("publishing {topic}: {e}")),
                Ok(()) if crate::server::debug() => {
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    crate::server::log(&format!("Forward {topic}: ok in {ms:.2} ms"));
                }
                Ok(()) => {}
            }
        }
    }
}
