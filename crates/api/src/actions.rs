//! The actions, one file per family. Each action is a request struct named after it, with
//! `parse(&Params) -> Result<Self, ApiError>` and `handle(self, &ApiState) -> Result<Reply, _>`;
//! this module registers them (one line each in `actions!`) and dispatches on the `Action`
//! string.

mod common;
pub mod domain_config;
mod pull;
mod realtime_command;
mod record_config;
mod record_index;
mod record_notify;
mod stream_control;
mod streams;

pub use common::format_unix_ms;

use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::Object;

/// An action's fields besides `RequestId`.
pub type Reply = Object;

/// Declares every action once: its wire name (the variant's name, also the XML root
/// `{name}Response`) and the module whose request struct of that name parses and runs it.
/// Adding an action is one line here.
macro_rules! actions {
    ($($action:ident => $module:ident,)*) => {
        /// The actions liverec answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($action,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$action,)*];

            /// The wire name (also the XML root `{name}Response`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$action => stringify!($action),)*
                }
            }
        }

        /// Parses `params` as `action`'s request without running it (the fuzz targets in
        /// `fuzz/` reach every action's parameter parsing through it, without an [`ApiState`]).
        #[doc(hidden)]
        pub fn parse_only(action: Action, params: &Params) -> Result<(), ApiError> {
            match action {
                $(Action::$action => $module::$action::parse(params).map(drop),)*
            }
        }

        /// Parses the action's parameters and runs it.
        pub async fn dispatch(
            action: Action,
            params: &Params,
            state: &ApiState,
        ) -> Result<Reply, ApiError> {
            match action {
                $(Action::$action => $module::$action::parse(params)?.handle(state).await,)*
            }
        }
    };
}

actions! {
    RealTimeRecordCommand => realtime_command,
    AddLiveAppRecordConfig => record_config,
    UpdateLiveAppRecordConfig => record_config,
    DeleteLiveAppRecordConfig => record_config,
    DescribeLiveRecordConfig => record_config,
    DescribeLiveStreamsOnlineList => streams,
    DescribeLiveStreamsPublishList => streams,
    ForbidLiveStream => stream_control,
    ResumeLiveStream => stream_control,
    DescribeLiveStreamsBlockList => stream_control,
    SetLiveLazyPullStreamInfoConfig => pull,
    DescribeLiveLazyPullStreamConfig => pull,
    DeleteLiveLazyPullStreamInfoConfig => pull,
    AddLivePullStreamInfoConfig => pull,
    UpdateLivePullStreamInfoConfig => pull,
    DescribeLivePullStreamConfig => pull,
    DeleteLivePullStreamInfoConfig => pull,
    DescribeLiveStreamRecordIndexFiles => record_index,
    DescribeLiveStreamRecordIndexFile => record_index,
    DescribeLiveStreamRecordContent => record_index,
    CreateLiveStreamRecordIndexFiles => record_index,
    DeleteLiveStreamRecordIndexFiles => record_index,
    AddLiveRecordNotifyConfig => record_notify,
    UpdateLiveRecordNotifyConfig => record_notify,
    DeleteLiveRecordNotifyConfig => record_notify,
    DescribeLiveRecordNotifyConfig => record_notify,
    DescribeLiveRecordNotifyRecords => record_notify,
    BatchSetLiveDomainConfigs => domain_config,
    DescribeLiveDomainConfigs => domain_config,
    BatchDeleteLiveDomainConfigs => domain_config,
}

impl Action {
    /// Exact, case-sensitive match, as Alibaba's gateway does.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Every wire name, for the throttle.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|a| a.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for &a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        assert_eq!(Action::from_name("realtimerecordcommand"), None);
        assert_eq!(Action::from_name(""), None);
        assert_eq!(Action::names().len(), Action::ALL.len());
    }
}
