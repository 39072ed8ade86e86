//! The generated configs: each function writes what its server needs into
//! `dir`, picks free loopback ports and returns the processes to start.
//! Nothing is started here.

use crate::daemons::free_port;
use crate::origin::grip_origin;
use crate::{Launch, Setup, NCHAN_MODULE, NGINX};
use std::io;
use std::net::SocketAddr;
use std::path::Path;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// nginx with nchan, one worker: `POST /pub/{id}` publishes, `GET
/// /sub/{id}` subscribes (EventSource with `Accept: text/event-stream`,
/// chunked with `TE: chunked`, or any other nchan subscriber), in the
/// foreground (`daemon off`) so its master is the process started.
pub fn nchan_setup(dir: &Path) -> io::Result<Setup> {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         load_module {NCHAN_MODULE};\n\
         events {{ worker_connections 20000; }}\nworker_rlimit_nofile 20000;\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port} backlog=4096;\n\
         location ~ ^/pub/(.+)$ {{ nchan_publisher; nchan_channel_id $1; nchan_message_buffer_length 10; }}\n\
         location ~ ^/sub/(.+)$ {{ nchan_subscriber; nchan_channel_id $1; nchan_subscriber_first_message newest; }}\n\
         }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let args = vec![
        "-c".into(),
        path.display().to_string(),
        "-p".into(),
        d.to_string(),
        "-e".into(),
        format!("{d}/error.log"),
    ];
    Ok(Setup {
        launches: vec![Launch {
            name: "nginx",
            program: NGINX.into(),
            args,
            package: "nginx-light libnginx-mod-nchan",
            // worker_processes 1
            forks: 1,
        }],
        subscribe: loopback(port),
        publish: loopback(port),
        probe: None,
    })
}

/// Pushpin in front of a GRIP origin (a thread of this process answering
/// every `GET /.../{id}` with `Grip-Hold: stream` on channel `{id}`), with
/// a zurl of its own: the packaged setup expects a system zurl at
/// `/var/run/zurl`, and zurl's packaged config denies `127.*` origins, so
/// the proxy could never reach a loopback origin. Subscribers connect to
/// `subscribe` (`/stream/{id}`), publishers to `publish` (`POST /publish/`).
pub fn pushpin_setup(dir: &Path) -> io::Result<Setup> {
    let origin = grip_origin()?;
    let (http_port, publish_port) = (free_port(), free_port());
    let run = dir.join("run");
    std::fs::create_dir_all(&run)?;
    let run = run.display();
    let d = dir.display();
    let zurl = dir.join("zurl.conf");
    std::fs::write(
        &zurl,
        format!(
            "[General]\nin_spec=ipc://{run}/zurl-in\nin_stream_spec=ipc://{run}/zurl-in-stream\n\
             out_spec=ipc://{run}/zurl-out\ndefpolicy=allow\nallow=\ndeny=\nmax_open_requests=20000\n\
             buffer_size=200000\ntimeout=600\n"
        ),
    )?;
    let routes = dir.join("routes");
    std::fs::write(&routes, format!("* 127.0.0.1:{}\n", origin.port()))?;
    let conf = dir.join("pushpin.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\ninclude={{libdir}}/internal.conf\nrundir={run}\nipc_prefix=c1m-\nport_offset=0\n\
             [runner]\nservices=condure,pushpin-proxy,pushpin-handler\nhttp_port=127.0.0.1:{http_port}\n\
             logdir={d}\nlog_level=2\nclient_maxconn=20000\ncondure_bin=condure\n\
             [proxy]\nroutesfile={}\nzurl_out_specs=ipc://{run}/zurl-in\n\
             zurl_out_stream_specs=ipc://{run}/zurl-in-stream\nzurl_in_specs=ipc://{run}/zurl-out\n\
             sig_key=changeme\nupdates_check=off\n\
             [handler]\npush_in_spec=ipc://{run}/push-in\npush_in_sub_specs=ipc://{run}/push-in-sub\n\
             push_in_http_addr=127.0.0.1\npush_in_http_port={publish_port}\nstats_spec=ipc://{run}/stats\n\
             command_spec=ipc://{run}/command\nmessage_rate=100000\nmessage_hwm=100000\n",
            routes.display()
        ),
    )?;
    Ok(Setup {
        launches: vec![
            Launch {
                name: "zurl",
                program: "zurl".into(),
                args: vec![format!("--config={}", zurl.display())],
                package: "zurl",
                forks: 0,
            },
            Launch {
                name: "pushpin",
                program: "pushpin".into(),
                args: vec![format!("--config={}", conf.display())],
                package: "pushpin",
                // [runner] services: condure, pushpin-proxy, pushpin-handler
                forks: 3,
            },
        ],
        subscribe: loopback(http_port),
        publish: loopback(publish_port),
        // Through condure, the proxy, zurl and the origin: a held stream.
        probe: Some("/stream/c1m-ready-probe"),
    })
}

/// nats-server on a free port.
pub fn nats_setup(_dir: &Path) -> io::Result<Setup> {
    let port = free_port();
    Ok(Setup {
        launches: vec![Launch {
            name: "nats-server",
            program: "nats-server".into(),
            args: vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            package: "nats-server",
            forks: 0,
        }],
        subscribe: loopback(port),
        publish: loopback(port),
        probe: None,
    })
}

/// redis-server on a free port, no persistence.
pub fn redis_setup(dir: &Path) -> io::Result<Setup> {
    let port = free_port();
    let args = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    Ok(Setup {
        launches: vec![Launch {
            name: "redis-server",
            program: "redis-server".into(),
            args,
            package: "redis-server",
            forks: 0,
        }],
        subscribe: loopback(port),
        publish: loopback(port),
        probe: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nchan_config_listens_where_the_setup_says() {
        let dir = tempfile::tempdir().unwrap();
        let setup = nchan_setup(dir.path()).unwrap();
        let conf = std::fs::read_to_string(dir.path().join("nginx.conf")).unwrap();
        assert!(
            conf.contains(&format!("listen {} backlog=4096;", setup.subscribe)),
            "{conf}"
        );
        assert!(
            conf.contains("daemon off;"),
            "the master is the process started"
        );
        assert_eq!(
            setup.launches[0].args[1],
            dir.path().join("nginx.conf").display().to_string()
        );
    }

    #[test]
    fn pushpin_routes_to_a_grip_origin_that_holds_streams() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let setup = pushpin_setup(dir.path()).unwrap();
        let routes = std::fs::read_to_string(dir.path().join("routes")).unwrap();
        let origin: SocketAddr = routes.trim().trim_start_matches("* ").parse().unwrap();
        let mut s = std::net::TcpStream::connect(origin).unwrap();
        s.write_all(b"GET /stream/42?x=1 HTTP/1.1\r\nHost: o\r\n\r\n")
            .unwrap();
        let mut answer = vec![0; 512];
        let n = s.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(
            answer.contains("Grip-Hold: stream\r\nGrip-Channel: 42\r\n"),
            "{answer}"
        );
        assert_ne!(setup.subscribe, setup.publish);
        let names: Vec<&str> = setup.launches.iter().map(|l| l.name).collect();
        assert_eq!(names, ["zurl", "pushpin"]);
    }
}
