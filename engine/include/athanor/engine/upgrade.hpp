// sa::upgrade(): bring a user's database to the application's schema at start-up, recording
// what was done in the database (table athanor_schema_version), with numbered hand-written
// steps for what comparing schemas cannot know (data migrations), as Alembic revisions are.
//
//   sa::Migrations steps;
//   steps.rename_column("users", "fullname", "full_name")             // a rename, not drop + add
//        .step(1, "nicknames from names", [](sa::Connection& c) {
//            c.execute(users.update().values({{"nickname", users.c["name"]}}));
//        });
//   sa::upgrade(*engine, metadata, steps);                            // once, at start-up
#pragma once

#include <athanor/core/migration.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace athanor {

class Connection;
class Engine;
class MetaData;

/// Numbered steps and declared renames for upgrade(). Not thread-safe while being built;
/// read-only afterwards.
class Migrations {
public:
    struct Step {
        int version;
        std::string description;
        std::function<void(Connection&)> run;
    };

    /// Step `version` (> 0, unique): runs once, in its own transaction (committed with the
    /// record that it ran, so a crash in it leaves it to run again, and nothing of it done),
    /// after upgrade()'s changes that lose nothing and before those that do. Throws
    /// ArgumentError for a version <= 0 or given twice.
    Migrations& step(int version, std::string description, std::function<void(Connection&)> run);
    Migrations& rename_table(std::string from, std::string to);
    Migrations& rename_column(std::string table, std::string from, std::string to);

    /// In version order.
    const std::vector<Step>& steps() const noexcept { return steps_; }
    const std::vector<Rename>& renames() const noexcept { return renames_; }

private:
    std::vector<Step> steps_;
    std::vector<Rename> renames_;
};

struct UpgradeOptions {
    /// Also apply what loses data (drop table or column, narrowing types), after the steps.
    /// Without it those are left in UpgradeResult::deferred.
    bool allow_data_loss = false;
    /// Tables upgrade() never touches (see MigrationOptions::exclude_tables).
    std::vector<std::string> exclude_tables{};
    /// Called before each automatic operation runs.
    std::function<void(const MigrationOp&)> on_op{};
};

struct UpgradeResult {
    /// The operations applied automatically, in order.
    std::vector<MigrationOp> applied;
    /// Operations left out because they lose data (allow_data_loss not given).
    std::vector<MigrationOp> deferred;
    /// The versions of the steps run by this call.
    std::vector<int> steps_run;
    /// The highest step version recorded in the database (0: none).
    int version = 0;
};

/// Plans and applies the changes that make the database match `metadata` (plan_migration with
/// the renames of `migrations`), safe ones first, then runs the steps not recorded yet, then
/// (with allow_data_loss) the rest, and records the schema's fingerprint and each step in
/// athanor_schema_version. Idempotent: a second call with the same arguments does nothing.
/// Throws MigrationError when a step or a change fails: what was committed before stays
/// (each part is its own transaction) and is recorded, so the next call resumes.
UpgradeResult upgrade(Engine& engine, const MetaData& metadata, const Migrations& migrations = {},
                      const UpgradeOptions& options = {});

/// The highest step version upgrade() recorded (0: none), or -1 when it never ran on this
/// database.
int schema_version(Engine& engine);

/// A fingerprint of a schema (a hash of its JSON document, hex), as upgrade() records it.
std::string schema_fingerprint(const MetaData& metadata);

}  // namespace athanor
