// Figures: the SVG writer's ticks and smoothing, and the documents `ldm-coord plot` and
// `compare --plot` write, parsed as XML (Boost.PropertyTree's parser).
#include <doctest/doctest.h>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <cmath>
#include <functional>
#include <sstream>

#include "coordinator/plot.h"
#include "coordinator/svg_chart.h"
#include "shared/core/error.h"

using namespace ldm;
using namespace ldm::coord;
using nlohmann::json;
namespace pt = boost::property_tree;

namespace {

pt::ptree parse(const std::string& svg) {
  std::istringstream in(svg);
  pt::ptree tree;
  pt::read_xml(in, tree);  // throws on malformed XML
  return tree;
}

// Every element under `node` (depth first) with its tag.
void walk(const pt::ptree& node, const std::function<void(const std::string&, const pt::ptree&)>& fn) {
  for (const auto& [tag, child] : node) {
    if (tag == "<xmlattr>") continue;
    fn(tag, child);
    walk(child, fn);
  }
}

std::string attr(const pt::ptree& e, const std::string& name) { return e.get("<xmlattr>." + name, std::string()); }

// Elements of `tag` whose class attribute is exactly `cls`.
std::vector<pt::ptree> find(const pt::ptree& svg, const std::string& tag, const std::string& cls) {
  std::vector<pt::ptree> out;
  walk(svg, [&](const std::string& t, const pt::ptree& e) {
    if (t == tag && attr(e, "class") == cls) out.push_back(e);
  });
  return out;
}

// Tick labels of the "axis x" or "axis y" group.
std::vector<std::string> ticks(const pt::ptree& svg, const std::string& axis) {
  std::vector<std::string> out;
  walk(svg, [&](const std::string& t, const pt::ptree& g) {
    if (t == "g" && attr(g, "class") == "axis " + axis)
      for (const auto& [tag, e] : g)
        if (tag == "text" && attr(e, "class") == "tick") out.push_back(e.data());
  });
  return out;
}

// A two-stage experiment (pre: 100 steps of batch 8; fine from pre: 50 steps of batch 4) with a
// loss point every step falling from `start` by 10x, and an evaluation stage's fid at pre's end.
ResultCell experiment(const std::string& name, double start, const std::string& family) {
  ResultCell c;
  c.view.experiment.name = name;
  c.view.experiment.spec = {
      {"stage", json::array({{{"name", "pre"}, {"steps", 100}, {"batch_size", 8}},
                             {{"name", "fine"}, {"steps", 50}, {"batch_size", 4}, {"init_from", "pre"}},
                             {{"name", "fid"}, {"kind", "eval"}, {"after", "pre"}}})}};
  c.values = {{"recipe.family", family}};
  for (int s = 1; s <= 100; ++s) c.points["pre"].push_back({"loss", s, start * std::pow(0.1, s / 100.0), 1, 0});
  for (int s = 1; s <= 50; ++s) c.points["fine"].push_back({"loss", s, start * 0.1, 1, 0});
  c.points["fid"] = {{"fid", 100, start * 10, 1, 0}};
  return c;
}

}  // namespace

TEST_CASE("svg ticks: nice linear steps covering the range, decades on a log axis") {
  CHECK(linear_ticks(0, 97) == std::vector<double>{0, 20, 40, 60, 80, 100});
  const std::vector<double> tenths = linear_ticks(0.12, 0.38, 4);
  REQUIRE(tenths.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(tenths[i] == doctest::Approx(0.1 * double(i + 1)));
  const std::vector<double> log = log_ticks(0.03, 40);
  REQUIRE(log.size() == 5);
  for (std::size_t i = 0; i < log.size(); ++i) CHECK(log[i] == doctest::Approx(std::pow(10.0, int(i) - 2)));
  CHECK(wants_log_axis({0.05, 2.0}));
  CHECK_FALSE(wants_log_axis({0.5, 2.0}));    // less than a decade
  CHECK_FALSE(wants_log_axis({0.0, 200.0}));  // zero has no logarithm
  // Debiased smoothing: a constant stays constant from the first point; a step is followed slowly.
  for (double v : smooth({3, 3, 3}, 0.9)) CHECK(v == doctest::Approx(3.0));
  const std::vector<double> s = smooth({0, 0, 10, 10}, 0.5);
  CHECK(s[2] > 0);
  CHECK(s[2] < s[3]);
  CHECK(s[3] < 10);
  CHECK(xml_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST_CASE("plot: one valid SVG per metric, one line per experiment, stages end to end, log axis when it helps") {
  const std::vector<ResultCell> cells = {experiment("a", 1.0, "dit"), experiment("b", 2.0, "unet<&>")};
  const std::vector<Figure> figures = plot_curves(cells, PlotOptions{});
  REQUIRE(figures.size() == 2);  // loss, then the evaluation stage's fid
  CHECK(figures[0].file == "loss.svg");
  CHECK(figures[1].file == "fid.svg");
  const pt::ptree loss = parse(figures[0].svg);
  const auto lines = find(loss, "path", "series");
  REQUIRE(lines.size() == 2);
  CHECK(attr(lines[0], "data-label") == "family=dit");
  CHECK(attr(lines[1], "data-label") == "family=unet<&>");  // escaped in the file, read back whole
  CHECK(find(loss, "path", "series raw").size() == 2);      // 150 points each: smoothed over raw
  // 150 points per line: 100 steps of pre, then fine's 50 after pre's end.
  const std::string d = attr(lines[0], "d");
  CHECK(std::count(d.begin(), d.end(), 'L') == 149);
  // Loss spans 0.1..2: a log axis with decade ticks, and labels with what the axes hold.
  CHECK(ticks(loss, "y") == std::vector<std::string>{"0.1", "1", "10"});
  CHECK(ticks(loss, "x") == std::vector<std::string>{"0", "50", "100", "150"});  // 150 steps end to end
  CHECK(find(loss, "text", "x-label").at(0).data().find("optimiser steps") == 0);
  CHECK(find(loss, "text", "y-label").at(0).data() == "loss (log scale)");
  CHECK(find(loss, "g", "legend").size() == 1);

  // Images seen: pre 100 x 8, then fine 50 x 4 = 1000 images; fid sits at pre's end (800).
  PlotOptions images;
  images.x = "images";
  images.metrics = {"fid"};
  const std::vector<Figure> fid = plot_curves(cells, images);
  REQUIRE(fid.size() == 1);
  const pt::ptree f = parse(fid[0].svg);
  CHECK(find(f, "path", "series").size() == 2);
  CHECK(find(f, "path", "series raw").empty());  // one point: nothing to smooth
  CHECK(find(f, "circle", "").size() == 2);
  CHECK(find(f, "text", "x-label").at(0).data().find("images seen") == 0);

  images.x = "epochs";
  CHECK_THROWS_AS(plot_curves(cells, images), Error);
  PlotOptions missing;
  missing.metrics = {"clip_score"};
  CHECK_THROWS_WITH_AS(plot_curves(cells, missing), "no experiment has a point of clip_score", Error);
}

TEST_CASE("compare --plot: a bar per row and column, error bars only where a row has several experiments") {
  const json cmp = {
      {"metric", "fid"},
      {"rows_key", "recipe.family"},
      {"columns", {"fid", "fid-512"}},
      {"rows",
       {{{"row", "dit"},
         {"cells",
          {{"fid", {{"n", 2}, {"mean", 42.0}, {"std", 2.8}}}, {"fid-512", {{"n", 2}, {"mean", 50.0}, {"std", 1.0}}}}}},
        {{"row", "unet"}, {"cells", {{"fid", {{"n", 1}, {"mean", 30.0}, {"std", 0.0}}}, {"fid-512", nullptr}}}}}}};
  const Figure fig = plot_comparison(cmp);
  CHECK(fig.file == "fid-compare.svg");
  const pt::ptree svg = parse(fig.svg);
  const auto bars = find(svg, "rect", "bar");
  REQUIRE(bars.size() == 3);  // unet has no fid-512
  CHECK(find(svg, "line", "error").size() == 2);
  CHECK(ticks(svg, "x") == std::vector<std::string>{"fid", "fid-512"});
  // Bar heights follow the means: dit's fid (42) is taller than unet's (30).
  const auto height = [&](const std::string& label, std::size_t nth) {
    std::size_t seen = 0;
    for (const auto& b : bars)
      if (attr(b, "data-label") == label && seen++ == nth) return std::stod(attr(b, "height"));
    return -1.0;
  };
  CHECK(height("dit", 0) > height("unet", 0));
  CHECK(height("dit", 0) / height("unet", 0) == doctest::Approx(42.0 / 30.0).epsilon(0.01));
}
