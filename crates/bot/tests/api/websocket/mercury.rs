//! The fake Mercury: a WebSocket server that sends the test's events and logs what the bot
//! sends back (authorisation, acknowledgements).

use super::*;

pub(super) enum Cmd {
    Send(Value),
    Close,
}

#[derive(Default)]
pub(super) struct Log {
    /// Path and query of every handshake.
    pub(super) handshakes: Vec<String>,
    /// Connections whose first frame was a valid authorization.
    pub(super) authorized: usize,
    pub(super) bad_auth: usize,
    /// Every frame the bot sent after authorizing.
    pub(super) received: Vec<Value>,
    /// The envelope id of every frame sent to the bot.
    pub(super) sent: Vec<String>,
}

impl Log {
    /// Envelopes sent to the bot and not (yet) acknowledged with their id.
    pub(super) fn unacked(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|id| {
                !self
                    .received
                    .iter()
                    .any(|f| f["type"] == "ack" && f["messageId"] == id.as_str())
            })
            .cloned()
            .collect()
    }
}

/// One websocket server speaking just enough Mercury: it expects the authorization frame
/// first (closing with 4401 otherwise), sends a buffer-state event, answers pings with
/// pongs, records everything, and sends what the test asks. Handshakes on a path holding
/// `reject_404` are refused with 404, as Mercury does for an unknown device.
pub(super) struct FakeMercury {
    pub(super) addr: SocketAddr,
    pub(super) commands: mpsc::UnboundedSender<Cmd>,
    pub(super) log: Arc<Mutex<Log>>,
}

impl FakeMercury {
    pub(super) async fn start(reject_404: Option<&'static str>) -> FakeMercury {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (commands, mut rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Log::default()));
        let log2 = log.clone();
        tokio::spawn(async move {
            // One connection at a time, like one bot with one device.
            while let Ok((tcp, _)) = listener.accept().await {
                let log3 = log2.clone();
                // The error type is tungstenite's own, sized as it is.
                #[allow(clippy::result_large_err)]
                let callback =
                    move |req: &Request, res: Response| -> Result<Response, ErrorResponse> {
                        let target = req.uri().to_string();
                        log3.lock().unwrap().handshakes.push(target.clone());
                        if reject_404.is_some_and(|r| target.contains(r)) {
                            let mut refused = ErrorResponse::new(Some("device not found".into()));
                            *refused.status_mut() =
                                tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
                            return Err(refused);
                        }
                        Ok(res)
                    };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    continue;
                };
                serve_connection(ws, &mut rx, &log2).await;
            }
        });
        FakeMercury {
            addr,
            commands,
            log,
        }
    }

    pub(super) fn url(&self, device: &str) -> String {
        format!(
            "ws://{}/v1/apps/wx2/registrations/{device}/messages",
            self.addr
        )
    }

    pub(super) fn send(&self, event: &Value) {
        self.commands.send(Cmd::Send(event.clone())).unwrap();
    }

    pub(super) fn close(&self) {
        self.commands.send(Cmd::Close).unwrap();
    }

    pub(super) fn acks(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|f| f["type"] == "ack")
            .map(|f| f["messageId"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub(super) fn handshakes(&self) -> Vec<String> {
        self.log.lock().unwrap().handshakes.clone()
    }

    pub(super) async fn wait_until(&self, what: &str, done: impl Fn(&Log) -> bool) {
        assert!(
            eventually(Duration::from_secs(10), || {
                let now = done(&self.log.lock().unwrap());
                async move { now }
            })
            .await,
            "fake Mercury: timed out waiting for {what}"
        );
    }

    pub(super) async fn wait_authorized(&self, n: usize) {
        self.wait_until(&format!("{n} authorized connection(s)"), |l| {
            l.authorized >= n
        })
        .await;
    }

    pub(super) async fn wait_ack(&self, envelope_id: &str) {
        self.wait_until(&format!("an ack of {envelope_id}"), |l| {
            l.received
                .iter()
                .any(|f| f["type"] == "ack" && f["messageId"] == envelope_id)
        })
        .await;
    }
}

pub(super) async fn serve_connection(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    log: &Arc<Mutex<Log>>,
) {
    let first = match ws.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(&t).unwrap_or(Value::Null),
        _ => return,
    };
    let authorized = first["type"] == "authorization"
        && first["id"].as_str().is_some_and(|id| !id.is_empty())
        && first["data"]["token"] == format!("Bearer {TOKEN}");
    if !authorized {
        log.lock().unwrap().bad_auth += 1;
        let _ = ws
            .close(Some(CloseFrame {
                code: 4401.into(),
                reason: "authorization failed".into(),
            }))
            .await;
        return;
    }
    log.lock().unwrap().authorized += 1;
    let buffer_state = json!({"id": new_uuid(), "data": {"eventType": "mercury.buffer_state",
        "bufferState": {"conversation": "UNAVAILABLE", "locus": "UNAVAILABLE"}}});
    log.lock()
        .unwrap()
        .sent
        .push(buffer_state["id"].as_str().unwrap().to_owned());
    if ws
        .send(Message::text(buffer_state.to_string()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(event)) => {
                    if let Some(id) = event["id"].as_str() {
                        log.lock().unwrap().sent.push(id.to_owned());
                    }
                    if ws.send(Message::text(event.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Cmd::Close) | None => {
                    let _ = ws.close(None).await;
                    // Read until the bot answers the close, so it sees a clean close.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let frame: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if frame["type"] == "ping" {
                        let pong = json!({"type": "pong", "id": frame["id"]});
                        let _ = ws.send(Message::text(pong.to_string())).await;
                    }
                    log.lock().unwrap().received.push(frame);
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
