//! Building and running the application.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use cardgate_admin::Admin;
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer};
use serde_json::json;
use tracing_actix_web::TracingLogger;

use crate::admin::{self, AdminState};
use crate::limits::{self, Limits};
use crate::metrics;
use crate::registry_events::{self, RegistryEvents};
use crate::settings::{Settings, SettingsError};
use crate::throttle::Throttle;
use crate::token::{self, AppState};

/// Jellyfish's token path, always served besides the realm's.
pub const JELLYFISH_REALM_PATH: &str = "/api/v2/registry";

/// A bound, not yet running, server.
pub struct Application {
    port: u16,
    realm_path: String,
    server: Server,
    /// On SIGTERM, how long to serve with `/readyz` answering 503 first; zero: none.
    drain: Duration,
    draining: Arc<AtomicBool>,
}

/// Start-up failed; the message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("database (`database.url`): {0}")]
    Database(#[from] cardgate_store::StoreError),
    #[error("cannot listen on `{address}` (`server.listen`): {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("realm_path", &self.realm_path)
            .field("drain", &self.drain)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Checks the settings (first every numeric one against its range), loads keys and
    /// plugins, migrates the database when configured, and binds the listener.
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let realm_path = settings.realm_path()?;
        let minter = settings.minter()?;
        let lifetimes = settings.token_lifetimes()?;
        let jwks = serde_json::to_string(&settings.jwks(minter.key())?)
            .map_err(|e| SettingsError::from_message(format!("JWKS: {e}")))?;
        let store = settings.store()?;
        if let Some(store) = &store
            && settings.database.migrate
        {
            store.migrate().await?;
            store.bootstrap().await?;
        }
        if let Some(store) = &store {
            // Caches are used only while changes from every instance are heard.
            store.watch_changes(settings.cache().ttl);
        }
        let (authn, authz) = crate::plugins::chains(settings, store.as_ref())?;
        let refresh = crate::plugins::refresh_tokens(settings, store.as_ref());
        let refresh_lifetime = settings.refresh_lifetime();
        let mut throttle = Throttle::new(&settings.throttle)
            .map_err(|e| SettingsError::from_message(format!("{e}: invalid")))?;
        if let Some(store) = &store {
            // The account limit holds across every instance sharing the database.
            throttle = throttle.shared_through(store);
        }
        let throttle = Arc::new(throttle);
        // The admin API is served when the card store is configured.
        let admin = match &store {
            Some(store) => Some(web::Data::new(AdminState {
                admin: Admin::new(
                    store.clone(),
                    CardAuthenticator::new(store.clone())
                        .map_err(|e| SettingsError::from_message(format!("admin: {e}")))?,
                    CardAuthorizer::new(store.clone()),
                    Duration::from_secs(settings.admin.session_lifetime_seconds),
                )
                .with_tokens_per_hour(settings.admin.tokens_per_hour),
                throttle: throttle.clone(),
            })),
            None => None,
        };
        // The registry's notifications, when a secret is configured for them.
        let events = match (&store, &settings.registry.events_secret) {
            (Some(store), Some(secret)) => Some(web::Data::new(RegistryEvents::new(
                store.clone(),
                secret,
                settings.registry.max_events_bytes,
            ))),
            _ => None,
        };
        if let Some(store) = &store {
            registry_events::spawn_upkeep(
                store.clone(),
                Duration::from_secs(settings.registry.reservation_seconds),
                Duration::from_secs(settings.registry.audit_retention_days * 24 * 3600),
            );
        }
        let drain = Duration::from_secs(settings.server.shutdown_drain_seconds);
        let draining = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(AppState {
            minter,
            lifetimes,
            service: settings.token.service.clone(),
            authn,
            authz,
            refresh,
            refresh_lifetime,
            store,
            jwks,
            throttle: throttle.clone(),
            draining: draining.clone(),
        });
        let address = settings.server.listen.clone();
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();
        let console = crate::console::ConsoleConfig {
            behind_tls: settings.console.behind_tls,
            registry: settings.token.service.clone(),
        };
        let route = realm_path.clone();
        let limits = web::Data::new(Limits::from_settings(settings, throttle.clone()));
        let mut server = HttpServer::new(move || {
            let admin = admin.clone();
            let events = events.clone();
            let console = console.clone();
            App::new()
                .app_data(limits.clone())
                .app_data(web::PayloadConfig::new(token::MAX_FORM_BYTES))
                .wrap(limits::json_errors())
                .wrap(from_fn(limits::bound_requests))
                .wrap(from_fn(limits::limit_headers))
                .wrap(TracingLogger::default())
                .wrap(from_fn(metrics::track))
                .configure(move |config| {
                    if let Some(admin) = admin {
                        config.app_data(admin);
                        admin::configure(config);
                        // The web console, on the same admin functions.
                        crate::console::configure(config, console);
                    }
                    if let Some(events) = events {
                        config.app_data(events).route(
                            registry_events::EVENTS_PATH,
                            web::post().to(registry_events::receive),
                        );
                    }
                })
                .app_data(state.clone())
                .route(&route, web::get().to(token::token))
                .route(&route, web::post().to(token::oauth_token))
                .route(JELLYFISH_REALM_PATH, web::get().to(token::token))
                .route(JELLYFISH_REALM_PATH, web::post().to(token::oauth_token))
                .route("/.well-known/jwks.json", web::get().to(token::jwks))
                .route("/healthz", web::get().to(token::healthz))
                .route("/readyz", web::get().to(token::readyz))
                .route("/metrics", web::get().to(metrics::metrics))
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().json(json!({
                        "error": "not_found",
                        "error_description": "no such endpoint",
                    }))
                }))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        if !drain.is_zero() {
            // The signals are handled in `run_until_stopped`, to drain first.
            server = server.disable_signals();
        }
        Ok(Application {
            port,
            realm_path,
            server: server.run(),
            drain,
            draining,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path tokens are served on.
    pub fn realm_path(&self) -> &str {
        &self.realm_path
    }

    /// Serves until a signal stops the server: SIGTERM gracefully (after the drain period,
    /// when there is one), SIGINT and SIGQUIT at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if !self.drain.is_zero() {
            use tokio::signal::unix::{SignalKind, signal};
            let handle = self.server.handle();
            let mut terminate = signal(SignalKind::terminate())?;
            let (drain, draining) = (self.drain, self.draining.clone());
            let graceful = handle.clone();
            tokio::spawn(async move {
                if terminate.recv().await.is_some() {
                    tracing::info!(
                        seconds = drain.as_secs(),
                        "SIGTERM received; draining: /readyz answers 503, requests are served"
                    );
                    draining.store(true, Ordering::SeqCst);
                    tokio::time::sleep(drain).await;
                    tracing::info!("drained; starting graceful shutdown");
                    graceful.stop(true).await;
                }
            });
            for kind in [SignalKind::interrupt(), SignalKind::quit()] {
                let mut stop = signal(kind)?;
                let handle = handle.clone();
                tokio::spawn(async move {
                    if stop.recv().await.is_some() {
                        tracing::info!("signal received; stopping at once");
                        handle.stop(false).await;
                    }
                });
            }
        }
        self.server.await
    }
}
