// icl_cell — the cell runner of the experiment sweeps (docs/sweeps.md §3).
#include <cstring>
#include <iostream>
#include <string>

#include "cell.hpp"

namespace {

const char* kUsage = R"(icl_cell — runs one cell of an experiment sweep (docs/sweeps.md)

  icl_cell --cell DIR [--threads T]   train (or resume, or load) and evaluate the cell in DIR
  icl_cell --check DIR                validate DIR/config.json only (exit 0, or 2 naming the problem)
  icl_cell --print-defaults           every setting, its default and meaning (JSON)
  icl_cell --print-settings           the same as a Markdown table (docs/sweeps.md §3)
  icl_cell --print-shapes             the compiled model shapes (d, hidden, heads)

DIR/config.json: {"sweep": name, "cell": id, "settings": {key: value, ...}} (tools/icl_sweep.py writes
it). Writes DIR/checkpoint.safetensors (every run.checkpoint_every steps and on a signal),
DIR/model.safetensors, DIR/metrics.csv and DIR/status.json, each atomically.

Exit status: 0 done (also when it was done already); 75 stopped by SIGTERM, SIGINT or SIGUSR1 after
writing its state (run it again to resume; a second signal exits at once with 128 + signal);
2 bad configuration or files of another run (not retried); 1 any other error.
The result does not depend on --threads (default 1).
)";

bool dispatch(const cell::Settings& s, const cell::Files& f, int threads, bool check) {
  switch (s.integer("model.d")) {
    case 1:
      return cell::run_d1(s, f, threads, check);
    case 2:
      return cell::run_d2(s, f, threads, check);
    case 4:
      return cell::run_d4(s, f, threads, check);
    case 8:
      return cell::run_d8(s, f, threads, check);
    case 12:
      return cell::run_d12(s, f, threads, check);
    case 16:
      return cell::run_d16(s, f, threads, check);
    case 20:
      return cell::run_d20(s, f, threads, check);
    default:
      throw cell::ConfigError("setting 'model.d': expected one of 1, 2, 4, 8, 12, 16, 20, got " +
                              s.text("model.d"));
  }
}

std::vector<cell::Shape> all_shapes() {
  std::vector<cell::Shape> all;
  for (const auto& l : {cell::shapes_d1(), cell::shapes_d2(), cell::shapes_d4(), cell::shapes_d8(),
                        cell::shapes_d12(), cell::shapes_d16(), cell::shapes_d20()})
    all.insert(all.end(), l.begin(), l.end());
  return all;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cell::ConfigError("cannot read '" + path + "' (expected the cell's config.json)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, mode;
  int threads = 1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      const auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw cell::ConfigError("option " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      } else if (a == "--cell" || a == "--check") {
        mode = a.substr(2);
        dir = value();
      } else if (a == "--threads") {
        const std::string v = value();
        std::size_t pos = 0;
        try {
          threads = std::stoi(v, &pos);
        } catch (const std::exception&) {
          pos = 0;
        }
        if (pos != v.size() || threads < 1 || threads > 256)
          throw cell::ConfigError("--threads: expected an integer in [1, 256], got " + v);
      } else if (a == "--print-defaults") {
        std::cout << "{\n";
        const auto& sp = cell::specs();
        for (std::size_t k = 0; k < sp.size(); ++k) {
          const bool quoted = sp[k].type == cell::Type::text;
          std::cout << "  \"" << sp[k].key << "\": " << (quoted ? "\"" : "") << sp[k].def
                    << (quoted ? "\"" : "") << (k + 1 < sp.size() ? "," : "") << "  \n";
        }
        std::cout << "}\n";
        for (const auto& s : sp) std::cerr << s.key << ": " << s.help << "\n";
        return 0;
      } else if (a == "--print-settings") {  // the Markdown table of docs/sweeps.md §3 (checked by a test)
        const char* types[] = {"integer", "number", "string", "boolean"};
        std::cout << "| setting | type | default | meaning |\n|---|---|---|---|\n";
        for (const auto& sp : cell::specs()) {
          std::string help;
          for (const char* c = sp.help; *c; ++c) help += *c == '|' ? std::string("\\|") : std::string(1, *c);
          std::cout << "| `" << sp.key << "` | " << types[static_cast<int>(sp.type)] << " | `" << sp.def
                    << "` | " << help << " |\n";
        }
        return 0;
      } else if (a == "--print-shapes") {
        for (const auto& s : all_shapes()) std::cout << s.d << " " << s.hidden << " " << s.heads << "\n";
        return 0;
      } else {
        throw cell::ConfigError("unknown option '" + a + "' (see --help)");
      }
    }
    if (mode.empty()) throw cell::ConfigError("expected --cell DIR or --check DIR (see --help)");
  } catch (const std::exception& e) {
    std::cerr << "icl_cell: " << e.what() << "\n";
    return 2;
  }

  const cell::Files files{dir};
  icl::train::StopSignals signals;  // first SIGTERM/SIGINT/SIGUSR1: checkpoint and exit 75
  cell::Status failed;
  try {
    const cell::Settings s = cell::Settings::from_config(read_file(files.config()), files.config());
    const bool check = mode == "check";
    if (!check && std::filesystem::exists(files.status()) && std::filesystem::exists(files.metrics())) {
      const std::string st = read_file(files.status());
      if (st.find("\"state\":\"done\"") != std::string::npos) {
        std::cout << "icl_cell: " << dir << " is done already" << std::endl;
        return 0;
      }
    }
    if (!check) {
      // temporaries of writes that a kill interrupted (io::write_file_atomic: <file>.tmp.<pid>);
      // one runner at a time works in a cell folder (the executors lock it)
      for (const auto& e : std::filesystem::directory_iterator(files.dir)) {
        const std::string name = e.path().filename().string();
        for (const char* stem : {"checkpoint.safetensors.tmp.", "model.safetensors.tmp.", "metrics.csv.tmp.",
                                 "status.json.tmp."})
          if (name.rfind(stem, 0) == 0) std::filesystem::remove(e.path());
      }
    }
    if (!dispatch(s, files, threads, check)) {
      std::string list;
      for (const auto& sh : all_shapes())
        if (sh.d == s.integer("model.d"))
          list += (list.empty() ? "" : ", ") + std::to_string(sh.hidden) + "/" + std::to_string(sh.heads);
      if (list.empty())
        throw cell::ConfigError("setting 'model.d' = " + s.text("model.d") +
                                ": this icl_cell was built without any model for that d (configured "
                                "with -DICL_CELL_DIMS not listing it; the default compiles every d)");
      throw cell::ConfigError("settings 'model.hidden' / 'model.heads' = " + s.text("model.hidden") + "/" +
                              s.text("model.heads") + ": not compiled for d = " + s.text("model.d") +
                              "; compiled: " + list +
                              " (configure with -DICL_CELL_SHAPES=paper for every shape of the "
                              "experiment sweeps, or add a shape in examples/icl_cell/shapes_d" +
                              s.text("model.d") + ".cpp)");
    }
    if (!check) std::cout << "icl_cell: " << dir << " done" << std::endl;
    return 0;
  } catch (const cell::Interrupted& stop) {
    std::cout << "icl_cell: stopped by signal " << icl::train::stop_requested()
              << "; state saved, run again to resume" << std::endl;
    try {
      cell::Status st = stop.status;  // the step reached (the checkpoint's), the last loss and rate
      st.state = "interrupted";
      st.write(files);
    } catch (...) {
    }
    return icl::train::kExitInterrupted;
  } catch (const cell::ConfigError& e) {
    std::cerr << "icl_cell: " << e.what() << std::endl;
    failed.error = e.what();
    if (mode == "cell") try {
        failed.state = "failed";
        failed.write(files);
      } catch (...) {
      }
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "icl_cell: " << e.what() << std::endl;
    failed.error = e.what();
    failed.state = "failed";
    try {
      failed.write(files);
    } catch (...) {
    }
    return 1;
  }
}
