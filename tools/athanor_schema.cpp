// athanor-schema: a database's schema as JSON, and the plan that brings it to a JSON schema.
//
//   athanor-schema reflect URL > schema.json
//   athanor-schema diff URL schema.json
//   athanor-schema upgrade URL schema.json [--dry-run] [--allow-data-loss]
//
// diff exits 0 when the database matches the schema, 1 when there is work to do; upgrade
// applies what loses nothing (and, with --allow-data-loss, the rest) as sa::upgrade() does.
// Errors go to stderr with exit status 2.
#include <athanor/athanor.hpp>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace sa = athanor;

namespace {

constexpr const char* kUsage =
    "usage: athanor-schema reflect URL\n"
    "       athanor-schema diff URL SCHEMA.json\n"
    "       athanor-schema upgrade URL SCHEMA.json [--dry-run] [--allow-data-loss]\n"
    "URL: sqlite:///path/to/file.db, postgresql://user:pass@host:port/db, ...\n";

sa::MetaData read_schema(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw sa::ArgumentError("cannot read " + file);
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw sa::ArgumentError(file + " is not JSON: " + e.what());
    }
    return sa::MetaData::from_json(doc);
}

void print_ops(const std::vector<sa::MigrationOp>& ops, const char* heading) {
    if (ops.empty()) return;
    std::cout << heading << "\n";
    for (const auto& op : ops) std::cout << (op.destructive() ? "  ! " : "  - ") << op.describe() << "\n";
}

int run(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "-h" || args[0] == "--help") {
        std::cout << kUsage;
        return args.empty() ? 2 : 0;
    }
    const std::string& cmd = args[0];
    if (cmd == "reflect" && args.size() == 2) {
        auto engine = sa::create_engine(args[1]);
        sa::MetaData md;
        md.reflect(*engine);
        md.remove(sa::kSchemaVersionTable);
        std::cout << md.to_json().dump(2) << "\n";
        return 0;
    }
    if ((cmd == "diff" && args.size() == 3) || (cmd == "upgrade" && args.size() >= 3)) {
        bool dry_run = false, allow = false;
        for (std::size_t i = 3; i < args.size(); ++i) {
            if (args[i] == "--dry-run") dry_run = true;
            else if (args[i] == "--allow-data-loss") allow = true;
            else throw sa::ArgumentError("unknown option " + args[i]);
        }
        auto engine = sa::create_engine(args[1]);
        sa::MetaData md = read_schema(args[2]);
        if (cmd == "diff" || dry_run) {
            // diff: everything; a dry run: what upgrade would apply (the rest listed as deferred).
            const bool safe = cmd == "upgrade" && !allow;
            auto plan = sa::plan_migration(*engine, md, {.renames = {}, .exclude_tables = {}, .safe_only = safe});
            if (plan.empty() && plan.deferred().empty()) {
                std::cout << "the database matches " << args[2] << "\n";
                return 0;
            }
            std::cout << plan.operations().size() << " change(s) to match " << args[2]
                      << (plan.destructive() ? " (! loses data: needs --allow-data-loss)" : "") << ":\n"
                      << plan.to_string();
            return cmd == "diff" ? 1 : 0;
        }
        auto result = sa::upgrade(*engine, md, {},
                                  {.allow_data_loss = allow,
                                   .exclude_tables = {},
                                   .on_op = [](const sa::MigrationOp& op) { std::cout << "  " << op.describe() << "\n"; }});
        std::cout << (result.applied.empty() ? "nothing to apply" : std::to_string(result.applied.size()) + " change(s) applied")
                  << "\n";
        print_ops(result.deferred, "left out, they lose data (run again with --allow-data-loss):");
        return 0;
    }
    std::cerr << kUsage;
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        return run(args);
    } catch (const std::exception& e) {
        std::cerr << "athanor-schema: " << e.what() << "\n";
        return 2;
    }
}
