//! A request target reduced to what a server routes on: its path and
//! query. HTTP/1.1 servers must accept the absolute form (`GET
//! http://host:8000/test/1`, what proxies send) as well as the usual origin
//! form (`/test/1`); the authority is ignored (RFC 9112 3.2.2).

/// The path and query of a request target, with an absolute-form target
/// reduced to its origin form; other targets (`*`, authority-form) as they
/// are.
pub fn origin_form(target: &str) -> &str {
    let scheme_end = ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then_some(scheme.len())
    });
    let Some(after_scheme) = scheme_end else {
        return target;
    };
    let rest = &target[after_scheme..];
    match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => &rest[at..],
        // No path (`http://host`, `http://host?q`) means `/`.
        _ => "/",
    }
}

/// Splits an origin-form target at its first `?`: (path, query).
pub(crate) fn path_and_query(origin: &str) -> (&str, Option<&str>) {
    match origin.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (origin, None),
    }
}

/// The value of `name` in a query string (`a=1&seq=5`): the first pair
/// with that exact name, not percent-decoded.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_target_routes_like_its_path() {
        assert_eq!(origin_form("/test/1"), "/test/1");
        assert_eq!(origin_form("http://h:8000/test/1"), "/test/1");
        assert_eq!(origin_form("HTTPS://h/poll/2?seq=3"), "/poll/2?seq=3");
        assert_eq!(origin_form("http://h"), "/");
        assert_eq!(origin_form("http://h?x"), "/");
        assert_eq!(origin_form("http://"), "/");
        assert_eq!(origin_form("ftp://h/test/1"), "ftp://h/test/1");
        assert_eq!(origin_form("*"), "*");
    }

    #[test]
    fn splits_path_and_query() {
        assert_eq!(
            path_and_query("/poll/1?seq=2&x"),
            ("/poll/1", Some("seq=2&x"))
        );
        assert_eq!(path_and_query("/poll/1?"), ("/poll/1", Some("")));
        assert_eq!(path_and_query("/stats"), ("/stats", None));
    }

    #[test]
    fn finds_a_query_parameter() {
        assert_eq!(query_param("cb=x&seq=3", "seq"), Some("3"));
        assert_eq!(query_param("seq=3&seq=4", "seq"), Some("3"));
        assert_eq!(query_param("sequence=3", "seq"), None);
        assert_eq!(query_param("seq", "seq"), None);
        assert_eq!(query_param("", "seq"), None);
    }
}
