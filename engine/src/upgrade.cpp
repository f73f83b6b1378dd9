// upgrade(): plan_migration + apply at start-up, numbered steps, and the record of both in
// athanor_schema_version.
#include <athanor/engine/connection.hpp>
#include <athanor/engine/engine.hpp>
#include <athanor/engine/upgrade.hpp>

#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace athanor {

Migrations& Migrations::step(int version, std::string description, std::function<void(Connection&)> run) {
    if (version <= 0) throw ArgumentError("a migration step's version must be positive, got " + std::to_string(version));
    if (!run) throw ArgumentError("migration step " + std::to_string(version) + " has no function");
    for (const auto& s : steps_)
        if (s.version == version) throw ArgumentError("migration step " + std::to_string(version) + " is given twice");
    steps_.push_back({version, std::move(description), std::move(run)});
    std::sort(steps_.begin(), steps_.end(), [](const Step& a, const Step& b) { return a.version < b.version; });
    return *this;
}

Migrations& Migrations::rename_table(std::string from, std::string to) {
    renames_.push_back(athanor::rename_table(std::move(from), std::move(to)));
    return *this;
}

Migrations& Migrations::rename_column(std::string table, std::string from, std::string to) {
    renames_.push_back(athanor::rename_column(std::move(table), std::move(from), std::move(to)));
    return *this;
}

std::string schema_fingerprint(const MetaData& metadata) {
    // FNV-1a over the JSON document: stable across builds and platforms.
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : metadata.to_json().dump()) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

namespace {
// version 0 is the automatic changes (description: the schema's fingerprint); > 0 the steps.
struct VersionTable {
    MetaData md;
    Table& t = md.table(kSchemaVersionTable, Column("version", Integer(), primary_key(), autoincrement(false)),
                        Column("description", String(), nullable(false)), Column("applied_at", String(), nullable(false)));
};

std::string now_utc() {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

void record(Connection& c, const VersionTable& vt, int version, const std::string& description) {
    c.execute(vt.t.delete_().where(vt.t.c["version"] == version));
    c.execute(vt.t.insert(), {{"version", version}, {"description", description}, {"applied_at", now_utc()}});
}
}  // namespace

int schema_version(Engine& engine) {
    VersionTable vt;
    bool exists = false;
    engine.run_schema_work([&](SchemaConnection& conn) { exists = conn.dialect().has_table(conn, kSchemaVersionTable); });
    if (!exists) return -1;
    Connection c = engine.connect();
    auto max = c.execute(select(func::max(vt.t.c["version"]))).scalar<std::optional<std::int64_t>>();
    return max ? static_cast<int>(*max) : 0;
}

UpgradeResult upgrade(Engine& engine, const MetaData& metadata, const Migrations& migrations,
                      const UpgradeOptions& options) {
    UpgradeResult result;
    VersionTable vt;
    vt.md.create_all(engine);  // checkfirst

    std::vector<int> done;
    {
        Connection c = engine.connect();
        for (const Row& r : c.execute(select(vt.t.c["version"])).all()) done.push_back(static_cast<int>(r.get<std::int64_t>(0)));
    }
    MigrationOptions mo;
    mo.renames = migrations.renames();
    mo.exclude_tables = options.exclude_tables;
    ApplyOptions ao;
    ao.on_op = options.on_op;

    // 1. What loses nothing: new tables and columns the steps may fill, renames.
    mo.safe_only = true;
    MigrationPlan safe = plan_migration(engine, metadata, mo);
    safe.apply(engine, ao);
    result.applied = safe.operations();

    // 2. The steps not recorded yet, each with its record in one transaction.
    for (const auto& s : migrations.steps()) {
        if (std::find(done.begin(), done.end(), s.version) != done.end()) continue;
        Connection c = engine.connect();
        try {
            s.run(c);
            record(c, vt, s.version, s.description);
            c.commit();
        } catch (const std::exception& e) {
            throw MigrationError("migration step " + std::to_string(s.version) + " (" + s.description +
                                 ") failed and was rolled back: " + e.what());
        }
        result.steps_run.push_back(s.version);
        done.push_back(s.version);
    }

    // 3. The rest: applied with allow_data_loss, else reported.
    mo.safe_only = false;
    MigrationPlan rest = plan_migration(engine, metadata, mo);
    if (options.allow_data_loss) {
        ao.allow_data_loss = true;
        rest.apply(engine, ao);
        result.applied.insert(result.applied.end(), rest.operations().begin(), rest.operations().end());
    } else {
        result.deferred = rest.operations();
    }

    // The schema this database now has (when nothing was left out).
    if (result.deferred.empty()) {
        Connection c = engine.connect();
        record(c, vt, 0, "schema " + schema_fingerprint(metadata));
        c.commit();
    }
    result.version = done.empty() ? 0 : *std::max_element(done.begin(), done.end());
    return result;
}

}  // namespace athanor
