//! Task events published to containerd: each event is packed in an `Envelope` with its
//! topic and sent to containerd's ttrpc events service at `TTRPC_ADDRESS` (containerd 1.6's
//! way; older shims exec'd `containerd publish`).

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim_async::EventsClient;
use containerd_shim_protos::topics;
use tokio::sync::mpsc;

/// One event of the task service.
#[derive(Debug, Clone)]
pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Delete(TaskDelete),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    /// Linux only for now (FreeBSD's rctl has no OOM notification mapped).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Oom(TaskOOM),
}

impl Event {
    /// The topic containerd files the event under.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Create(_) => topics::TASK_CREATE_EVENT_TOPIC,
            Event::Start(_) => topics::TASK_START_EVENT_TOPIC,
            Event::Exit(_) => topics::TASK_EXIT_EVENT_TOPIC,
            Event::Delete(_) => topics::TASK_DELETE_EVENT_TOPIC,
            Event::ExecAdded(_) => topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Event::ExecStarted(_) => topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            Event::Oom(_) => topics::TASK_OOM_EVENT_TOPIC,
        }
    }

    fn message(&self) -> &dyn MessageDyn {
        match self {
            Event::Create(m) => m,
            Event::Start(m) => m,
            Event::Exit(m) => m,
            Event::Delete(m) => m,
            Event::ExecAdded(m) => m,
            Event::ExecStarted(m) => m,
            Event::Oom(m) => m,
        }
    }

    /// The envelope for `namespace`, stamped now.
    pub fn envelope(&self, namespace: &str) -> Result<Envelope, protobuf::Error> {
        let mut env = Envelope::new();
        let (s, n) = crate::exit::now();
        let ts = env.timestamp.mut_or_insert_default();
        ts.seconds = s;
        ts.nanos = n;
        env.namespace = namespace.to_string();
        env.topic = self.topic().to_string();
        env.event = protobuf::MessageField::some(pack(self.message())?);
        Ok(env)
    }
}

/// Packs an event as containerd's typeurl expects: the bare message name as the type URL
/// (`containerd.events.TaskExit`), which is how containerd registers its event types;
/// protobuf's own `Any::pack` prefixes `type.googleapis.com/`, which containerd 1.6 cannot
/// resolve.
pub fn pack(m: &dyn MessageDyn) -> Result<Any, protobuf::Error> {
    let mut any = Any::new();
    any.type_url = m.descriptor_dyn().full_name().to_string();
    any.value = m.write_to_bytes_dyn()?;
    Ok(any)
}

/// A handle that queues events; a task sends them in order.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::UnboundedSender<Event>,
    namespace: std::sync::Arc<str>,
}

impl Publisher {
    /// Starts the sender for containerd's ttrpc address (None: events are logged only,
    /// as when the shim is run by hand).
    pub fn spawn(ttrpc_address: Option<String>, namespace: String) -> Publisher {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let ns: std::sync::Arc<str> = namespace.as_str().into();
        tokio::spawn(async move {
            let mut client: Option<EventsClient> = None;
            while let Some(ev) = rx.recv().await {
                let Some(addr) = &ttrpc_address else {
                    tracing::info!(topic = ev.topic(), "no TTRPC_ADDRESS: event not published");
                    continue;
                };
                let env = match ev.envelope(&namespace) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!("packing {} event: {e}", ev.topic());
                        continue;
                    }
                };
                // One reconnect per event: containerd may have restarted.
                for attempt in 0..2 {
                    if client.is_none() {
                        match ttrpc::asynchronous::Client::connect(&format!(
                            "unix://{}",
                            crate::address::strip_unix(addr)
                        ))
                        .await
                        {
                            Ok(c) => client = Some(EventsClient::new(c)),
                            Err(e) => {
                                tracing::error!("connecting to containerd at {addr}: {e}");
                                break;
                            }
                        }
                    }
                    let mut req = ForwardRequest::new();
                    req.envelope = protobuf::MessageField::some(env.clone());
                    let c = client.as_ref().expect("connected above");
                    match c
                        .forward(ttrpc::context::with_timeout(5_000_000_000), &req)
                        .await
                    {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!("publishing {} (attempt {attempt}): {e}", ev.topic());
                            client = None;
                        }
                    }
                }
            }
        });
        Publisher { tx, namespace: ns }
    }

    /// The containerd namespace the shim serves.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn publish(&self, ev: Event) {
        if self.tx.send(ev).is_err() {
            tracing::error!("the event sender has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_envelope_has_topic_type_and_namespace() {
        let mut m = TaskExit::new();
        m.container_id = "c".into();
        m.exit_status = 7;
        let ev = Event::Exit(m.clone());
        let env = ev.envelope("ns1").unwrap();
        assert_eq!(env.topic, "/tasks/exit");
        assert_eq!(env.namespace, "ns1");
        assert!(env.timestamp.seconds > 0);
        let any = env.event.as_ref().unwrap();
        assert_eq!(any.type_url, "containerd.events.TaskExit");
        let back = <TaskExit as protobuf::Message>::parse_from_bytes(&any.value).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn topics() {
        assert_eq!(Event::Start(TaskStart::new()).topic(), "/tasks/start");
        assert_eq!(Event::Delete(TaskDelete::new()).topic(), "/tasks/delete");
        assert_eq!(Event::Create(TaskCreate::new()).topic(), "/tasks/create");
        assert_eq!(
            Event::ExecStarted(TaskExecStarted::new()).topic(),
            "/tasks/exec-started"
        );
        assert_eq!(Event::Oom(TaskOOM::new()).topic(), "/tasks/oom");
    }
}
