//! Persisted states as enums. [`text_enum!`](crate::text_enum) declares one with its
//! stored text, and that one table is its only conversion, both ways.

/// A stored value that no variant has: the database holds something this version of
/// the service did not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` in the database")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Declares an enum stored as text. It binds as `Text` in queries
/// (`d::state.eq(State::Pending)`) and loads from `String` through `TryFrom`
/// (`#[diesel(deserialize_as = String)]` on a `Queryable` field).
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: [$name; [$($text,)+].len()] = [$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::db::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::db::UnknownValue {
                        kind: stringify!($name),
                        value: s.chars().take(40).collect(),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::db::UnknownValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl diesel::expression::AsExpression<diesel::sql_types::Text> for $name {
            type Expression =
                <&'static str as diesel::expression::AsExpression<diesel::sql_types::Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                diesel::expression::AsExpression::<diesel::sql_types::Text>::as_expression(
                    self.as_str(),
                )
            }
        }

        impl<'a> diesel::expression::AsExpression<diesel::sql_types::Text> for &'a $name {
            type Expression =
                <&'static str as diesel::expression::AsExpression<diesel::sql_types::Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                diesel::expression::AsExpression::<diesel::sql_types::Text>::as_expression(
                    self.as_str(),
                )
            }
        }
    };
}
