use std::rc::Rc;

use yew::prelude::*;

use crate::admin::chart::{plot, Plot, Window, HEIGHT, WIDTH};
use crate::admin::show;
use crate::admin::wire::Overview;

#[derive(Properties, PartialEq)]
pub struct TrafficProps {
    pub overview: Option<Rc<Overview>>,
}

/// Deliveries per second and open connections over the last minutes, each
/// on its own scale, over the same time.
#[function_component]
pub fn Traffic(props: &TrafficProps) -> Html {
    let series = props.overview.as_ref().map(|overview| &overview.series);
    let window = series.and_then(Window::of);
    html! {
        <section class="admin-section" aria-labelledby="traffic-heading">
            <h2 id="traffic-heading">{ "Traffic" }</h2>
            if let (Some(series), Some(window)) = (series, window) {
                <div class="charts">
                    <Chart title="Deliveries per second" span_ms={window.span_ms()}
                           plot={plot(series, &window, |point| point.deliveries_per_s)} />
                    <Chart title="Open connections" span_ms={window.span_ms()}
                           plot={plot(series, &window, |point| point.connections as f64)} />
                </div>
            } else {
                <p class="more">{ "No traffic recorded yet." }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ChartProps {
    title: AttrValue,
    plot: Plot,
    span_ms: u64,
}

/// One line, inline SVG; its labels are HTML beside it (the SVG stretches).
#[function_component]
fn Chart(props: &ChartProps) -> Html {
    let plot = &props.plot;
    let latest = plot.latest.map(show::axis).unwrap_or_default();
    let since = show::before_now(props.span_ms);
    let label = format!("{} from {since} to now; now {latest}, scale 0 to {}", props.title, show::axis(plot.top));
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    let grid = |y: f64| {
        html! { <line class="grid" x1="0" x2={WIDTH.to_string()} y1={y.to_string()} y2={y.to_string()}
        vector-effect="non-scaling-stroke" /> }
    };
    html! {
        <figure class="chart">
            <figcaption>{ props.title.clone() }<span class="latest">{ latest.clone() }</span></figcaption>
            <div class="chart-body">
                <div class="y-axis" aria-hidden="true">
                    <span>{ show::axis(plot.top) }</span>
                    <span>{ show::axis(plot.top / 2.0) }</span>
                    <span>{ "0" }</span>
                </div>
                <svg viewBox={view_box} preserveAspectRatio="none" role="img" aria-label={label}>
                    { grid(0.0) }{ grid(HEIGHT / 2.0) }{ grid(HEIGHT) }
                    <path class="line" d={plot.path.clone()} vector-effect="non-scaling-stroke" />
                </svg>
            </div>
            <div class="x-axis" aria-hidden="true"><span>{ since }</span><span>{ "now" }</span></div>
        </figure>
    }
}
