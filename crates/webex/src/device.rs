//! Device registration (WDM): what a bot needs before Webex opens a Mercury websocket to it.
//! The device service's URL comes from the U2C catalog; a bot reuses its device by name so
//! restarts do not pile up registrations (Webex refuses a user with too many).
//!
//! WDM and the catalog are not in Webex's public REST reference: the shapes here follow
//! what the official JS SDK sends, and every field is read defensively.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use crate::client::Failure;
use crate::error::Error;

/// This bot's device name: found and reused at every start.
pub const DEVICE_NAME: &str = "webex-chatbot";
/// Where the device service is when the catalog cannot say.
pub const DEFAULT_WDM_URL: &str = "https://wdm-a.wbx2.com/wdm/api/v1";
/// The U2C catalog of Webex's commercial cloud.
pub const DEFAULT_U2C_URL: &str = "https://u2c.wbx2.com/u2c/api/v1";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The device is deleted on shutdown, within the shutdown budget.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered device, as WDM answers it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device itself (`DELETE` it to unregister).
    pub url: String,
    /// Where Mercury listens for this device (carries the device id: keep it out of logs).
    pub web_socket_url: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl Device {
    /// The device id for logs (the last segment of its url), never the socket URL.
    pub fn id(&self) -> &str {
        self.url.rsplit('/').find(|s| !s.is_empty()).unwrap_or("?")
    }
}

#[derive(Deserialize)]
struct DeviceList {
    #[serde(default)]
    devices: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Catalog {
    #[serde(default)]
    service_links: HashMap<String, serde_json::Value>,
}

/// This bot's device among those WDM lists: the first whose name is ours and that carries
/// the two urls. Entries that do not parse are skipped, not fatal.
fn pick_device(devices: Vec<serde_json::Value>) -> Option<Device> {
    devices
        .into_iter()
        .filter_map(|d| serde_json::from_value::<Device>(d).ok())
        .find(|d| d.name.as_deref() == Some(DEVICE_NAME))
}

/// The body of `POST {wdm}/devices`.
fn device_body() -> serde_json::Value {
    json!({
        "deviceName": DEVICE_NAME,
        "deviceType": "DESKTOP",
        "localizedModel": "rust",
        "model": "rust",
        "name": DEVICE_NAME,
        "systemName": DEVICE_NAME,
        "systemVersion": env!("CARGO_PKG_VERSION"),
    })
}

/// `base` + `/segment`, keeping every segment of `base` (which `Url::join` would not).
fn under(base: &Url, segment: &str) -> Result<Url, Error> {
    let joined = format!("{}/{segment}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| Error::InvalidUrl(format!("{joined}: {e}")))
}

/// A built-in default; the unit tests parse it.
#[allow(clippy::expect_used)]
fn default_wdm() -> Url {
    Url::parse(DEFAULT_WDM_URL).expect("the built-in WDM URL is valid")
}

/// The device service (WDM) for one bot token.
pub struct DeviceService {
    http: reqwest::Client,
    token: SecretString,
    base: Url,
}

impl DeviceService {
    /// `wdm` when given (an operator's override); else the catalog's `serviceLinks.wdm`
    /// under `u2c`; else [`DEFAULT_WDM_URL`], with a warning.
    pub async fn discover(
        http: reqwest::Client,
        token: SecretString,
        wdm: Option<&Url>,
        u2c: &Url,
    ) -> DeviceService {
        let base = match wdm {
            Some(url) => url.clone(),
            None => match catalog_wdm(&http, &token, u2c).await {
                Ok(url) => url,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        fallback = DEFAULT_WDM_URL,
                        "cannot look up the device service; using the default"
                    );
                    default_wdm()
                }
            },
        };
        tracing::info!(wdm = %base, "device service");
        DeviceService { http, token, base }
    }

    /// The device service's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .timeout(HTTP_TIMEOUT)
    }

    /// Reuses this bot's device when WDM lists one, else registers a new one.
    pub async fn device(&self) -> Result<Device, Error> {
        match self.find().await {
            Ok(Some(device)) => {
                tracing::info!(device_id = device.id(), "reusing this bot's device");
                return Ok(device);
            }
            Ok(None) => {}
            // Listing is only an optimisation; registering still works without it.
            Err(e) => tracing::warn!(error = %e, "cannot list devices"),
        }
        self.register().await
    }

    async fn find(&self) -> Result<Option<Device>, Error> {
        let url = under(&self.base, "devices")?;
        let res = self
            .request(Method::GET, url.as_str())
            .send()
            .await
            .map_err(Error::Transport)?;
        let list: DeviceList = decode(res, "GET devices").await?;
        Ok(pick_device(list.devices))
    }

    /// Registers a new device (also after Mercury said the old one is gone).
    pub async fn register(&self) -> Result<Device, Error> {
        let url = under(&self.base, "devices")?;
        let res = self
            .request(Method::POST, url.as_str())
            .json(&device_body())
            .send()
            .await
            .map_err(Error::Transport)?;
        let device: Device = decode(res, "POST devices").await?;
        tracing::info!(device_id = device.id(), "device registered");
        Ok(device)
    }

    /// Best effort: a device left behind is reused by name at the next start.
    pub async fn delete(&self, device: &Device) {
        let result = self
            .request(Method::DELETE, &device.url)
            .timeout(DELETE_TIMEOUT)
            .send()
            .await;
        match result {
            Ok(res) if res.status().is_success() || res.status() == StatusCode::NOT_FOUND => {
                tracing::info!(device_id = device.id(), "device deleted");
            }
            Ok(res) => {
                tracing::warn!(device_id = device.id(), status = %res.status(), "cannot delete the device");
            }
            Err(e) => {
                tracing::warn!(device_id = device.id(), error = %e, "cannot delete the device");
            }
        }
    }
}

/// A 2xx answer's JSON, or the error a failed answer carries (status, Webex's message,
/// tracking id).
async fn decode<T: DeserializeOwned>(res: Response, context: &'static str) -> Result<T, Error> {
    let status = res.status();
    if !status.is_success() {
        return Err(Failure::read(res).await.into_error(status, Duration::ZERO));
    }
    let bytes = res.bytes().await.map_err(Error::Transport)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Decode { context, source })
}

async fn catalog_wdm(
    http: &reqwest::Client,
    token: &SecretString,
    u2c: &Url,
) -> Result<Url, Error> {
    let mut url = under(u2c, "catalog")?;
    url.query_pairs_mut().append_pair("format", "hostmap");
    let res = http
        .get(url)
        .bearer_auth(token.expose_secret())
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .map_err(Error::Transport)?;
    let catalog: Catalog = decode(res, "GET catalog").await?;
    let link = catalog
        .service_links
        .get("wdm")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::InvalidUrl("the catalog has no serviceLinks.wdm".into()))?;
    let url = Url::parse(link)
        .map_err(|e| Error::InvalidUrl(format!("serviceLinks.wdm is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::InvalidUrl(
            "serviceLinks.wdm is not an HTTP URL".into(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn our_device_is_found_by_name() {
        let dev = |name: &str, n: u8| json!({"url": format!("https://wdm/devices/{n}"), "webSocketUrl": format!("wss://m/{n}"), "name": name});
        let found = pick_device(vec![
            json!({"name": DEVICE_NAME}), // no urls: skipped
            dev("python-spark-client", 1),
            dev(DEVICE_NAME, 2),
            dev(DEVICE_NAME, 3),
        ])
        .unwrap();
        assert_eq!(found.url, "https://wdm/devices/2");
        assert_eq!(found.id(), "2");
        assert!(pick_device(vec![dev("other", 1)]).is_none());
        assert!(pick_device(vec![]).is_none());
    }

    #[test]
    fn urls_keep_their_path() {
        let u2c = Url::parse(DEFAULT_U2C_URL).unwrap();
        assert_eq!(
            under(&u2c, "catalog").unwrap().as_str(),
            "https://u2c.wbx2.com/u2c/api/v1/catalog"
        );
        let slash = Url::parse("http://127.0.0.1:9/wdm/").unwrap();
        assert_eq!(
            under(&slash, "devices").unwrap().as_str(),
            "http://127.0.0.1:9/wdm/devices"
        );
        assert_eq!(default_wdm().as_str(), DEFAULT_WDM_URL);
    }

    #[test]
    fn the_device_body_has_every_field() {
        let body = device_body();
        for key in [
            "deviceName",
            "deviceType",
            "localizedModel",
            "model",
            "name",
            "systemName",
            "systemVersion",
        ] {
            assert!(body[key].is_string(), "{key}");
        }
        assert_eq!(body["deviceType"], "DESKTOP");
        assert_eq!(body["name"], DEVICE_NAME);
    }

    fn token() -> SecretString {
        SecretString::from("T0KEN")
    }

    #[tokio::test]
    async fn the_catalog_names_the_device_service() {
        let server = MockServer::start().await;
        let wdm = format!("{}/wdm/api/v1", server.uri());
        Mock::given(method("GET"))
            .and(path("/u2c/catalog"))
            .and(query_param("format", "hostmap"))
            .and(header("authorization", "Bearer T0KEN"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"serviceLinks": {"wdm": wdm, "conv": "https://c"}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let u2c = Url::parse(&format!("{}/u2c", server.uri())).unwrap();
        let service = DeviceService::discover(reqwest::Client::new(), token(), None, &u2c).await;
        assert_eq!(service.base_url().as_str(), wdm);
    }

    #[tokio::test]
    async fn an_unusable_catalog_falls_back_to_the_default() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/u2c/catalog"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"serviceLinks": {"wdm": "ftp://x/y"}})),
            )
            .mount(&server)
            .await;
        let u2c = Url::parse(&format!("{}/u2c", server.uri())).unwrap();
        let service = DeviceService::discover(reqwest::Client::new(), token(), None, &u2c).await;
        assert_eq!(service.base_url().as_str(), DEFAULT_WDM_URL);
        // An override is taken as it is, without asking the catalog.
        let wdm = Url::parse("http://127.0.0.1:9/wdm").unwrap();
        let service =
            DeviceService::discover(reqwest::Client::new(), token(), Some(&wdm), &u2c).await;
        assert_eq!(service.base_url(), &wdm);
    }

    #[tokio::test]
    async fn a_refused_registration_carries_the_status_and_tracking_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/wdm/devices"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"devices": []})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/wdm/devices"))
            .respond_with(
                ResponseTemplate::new(401)
                    .insert_header("trackingid", "ROUTER_1")
                    .set_body_json(json!({"message": "The request requires a valid access token"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let wdm = Url::parse(&format!("{}/wdm", server.uri())).unwrap();
        let service =
            DeviceService::discover(reqwest::Client::new(), token(), Some(&wdm), &wdm).await;
        let error = service.device().await.unwrap_err();
        assert_eq!(error.status(), Some(401));
        assert_eq!(error.tracking_id(), Some("ROUTER_1"));
        assert!(!format!("{error}").contains("T0KEN"));
    }

    #[tokio::test]
    async fn a_listed_device_is_reused_and_deleted_by_its_url() {
        let server = MockServer::start().await;
        let listed = json!({
            "url": format!("{}/wdm/devices/D1", server.uri()),
            "webSocketUrl": "wss://mercury.example/v1/apps/wx2/registrations/D1/messages",
            "name": DEVICE_NAME,
        });
        Mock::given(method("GET"))
            .and(path("/wdm/devices"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"devices": [listed]})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/wdm/devices"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/wdm/devices/D1"))
            .and(header("authorization", "Bearer T0KEN"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let wdm = Url::parse(&format!("{}/wdm", server.uri())).unwrap();
        let service =
            DeviceService::discover(reqwest::Client::new(), token(), Some(&wdm), &wdm).await;
        let device = service.device().await.unwrap();
        assert_eq!(device.id(), "D1");
        service.delete(&device).await;
    }
}
