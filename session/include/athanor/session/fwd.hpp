// Forward declarations of athanor's session types.
#pragma once

namespace athanor {
class Session;
class sessionmaker;
template <class T>
class Query;
class SessionTransaction;
enum class ObjectState;
}  // namespace athanor
