//! Which callback URLs a notify config accepts (API.md: `InvalidNotifyUrl.Malformed`,
//! `InvalidNotifyUrl.Unsafe`).

use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Not an absolute `http://` or `https://` URL with a host, or credentials in it.
    #[error("not an http:// or https:// URL with a host and without credentials")]
    Malformed,
    /// A loopback, private, link-local or unspecified host while private hosts are refused.
    #[error("the host is private or loopback")]
    Unsafe,
}

/// Checks a NotifyUrl or OnDemandUrl. `allow_private_hosts` is `[notify] allow_private_hosts`.
pub fn check(url: &str, allow_private_hosts: bool) -> Result<(), UrlProblem> {
    let parsed = url::Url::parse(url).map_err(|_| UrlProblem::Malformed)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlProblem::Malformed);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlProblem::Malformed);
    }
    let host = match parsed.host() {
        Some(host) => host,
        None => return Err(UrlProblem::Malformed),
    };
    if allow_private_hosts {
        return Ok(());
    }
    let private = match host {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
    };
    if private {
        Err(UrlProblem::Unsafe)
    } else {
        Ok(())
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls() {
        for url in [
            "",
            "example.com/cb",
            "ftp://example.com/cb",
            "http://user:pw@example.com/cb",
            "http://user@example.com/cb",
            "javascript:alert(1)",
        ] {
            assert_eq!(check(url, true), Err(UrlProblem::Malformed), "{url}");
        }
    }

    #[test]
    fn private_hosts_only_when_allowed() {
        for url in [
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://10.1.2.3/cb",
            "http://192.168.0.1/cb",
            "http://172.16.0.1/cb",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/cb",
            "http://[fd00::1]/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://0.0.0.0/cb",
            "http://100.64.0.1/cb",
        ] {
            assert_eq!(check(url, true), Ok(()), "{url}");
            assert_eq!(check(url, false), Err(UrlProblem::Unsafe), "{url}");
        }
        for url in [
            "https://example.com/cb?a=1",
            "http://8.8.8.8:8080/x",
            "http://[2001:db8::1]/",
        ] {
            assert_eq!(check(url, false), Ok(()), "{url}");
        }
    }
}
