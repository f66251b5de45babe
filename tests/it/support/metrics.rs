//! Reading a service's `/metrics` page (Prometheus text), for every kind of service
//! a test runs: [`super::TestApp`], [`super::Replica`] and [`super::ServiceProcess`].

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

/// The `/metrics` page of the service at `address` (`http://host:port`), or `None`
/// when it does not answer.
pub async fn scrape(http: &reqwest::Client, address: &str) -> Option<String> {
    let response = http.get(format!("{address}/metrics")).send().await.ok()?;
    Some(response.text().await.unwrap_or_default())
}

/// The value of one series on the `/metrics` page at `address`, or 0 (also when the
/// service does not answer).
pub async fn metric_at(http: &reqwest::Client, address: &str, series: &str) -> f64 {
    scrape(http, address)
        .await
        .map_or(0.0, |page| series_value(&page, series))
}
