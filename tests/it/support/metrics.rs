//! Reading a service's `/metrics` page (Prometheus text), for every kind of service
//! a test runs: [`super::TestApp`], [`super::Replica`] and [`super::ServiceProcess`].
//! The page is on the internal listener (`SCHOOLSIGNAL_METRICS_BIND`), so the
//! addresses here are metrics addresses; the main listener answers 404.

/// The value of one series in a Prometheus text page (`name{labels}` as printed),
/// or 0 when the page does not have it.
pub fn series_value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// The `/metrics` page of the service whose internal listener is at `metrics_address`
/// (`http://host:port`), or `None` when it does not answer.
pub async fn scrape(http: &reqwest::Client, metrics_address: &str) -> Option<String> {
    let response = http
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .ok()?;
    Some(response.text().await.unwrap_or_default())
}

/// The value of one series on the `/metrics` page at `metrics_address`, or 0 (also
/// when the service does not answer).
pub async fn metric_at(http: &reqwest::Client, metrics_address: &str, series: &str) -> f64 {
    scrape(http, metrics_address)
        .await
        .map_or(0.0, |page| series_value(&page, series))
}
