//! The actions, one file per family. Each action is a request struct with
//! `parse(&Params) -> Result<Self, ApiError>` and `handle(self, &ApiState) -> Result<Reply, _>`;
//! this module names them and dispatches on the `Action` string.

mod common;
pub mod domain_config;
mod realtime_command;
mod record_config;
mod record_index;
mod record_notify;
mod streams;

use crate::ApiState;
use crate::error::ApiError;
use crate::params::Params;
use crate::response::Object;

/// An action's fields besides `RequestId`.
pub type Reply = Object;

/// The actions liverec answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    RealTimeRecordCommand,
    AddLiveAppRecordConfig,
    UpdateLiveAppRecordConfig,
    DeleteLiveAppRecordConfig,
    DescribeLiveRecordConfig,
    DescribeLiveStreamsOnlineList,
    DescribeLiveStreamRecordIndexFiles,
    DescribeLiveStreamRecordIndexFile,
    DescribeLiveStreamRecordContent,
    CreateLiveStreamRecordIndexFiles,
    DeleteLiveStreamRecordIndexFiles,
    AddLiveRecordNotifyConfig,
    UpdateLiveRecordNotifyConfig,
    DeleteLiveRecordNotifyConfig,
    DescribeLiveRecordNotifyConfig,
    DescribeLiveRecordNotifyRecords,
    BatchSetLiveDomainConfigs,
    DescribeLiveDomainConfigs,
    BatchDeleteLiveDomainConfigs,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::RealTimeRecordCommand,
        Action::AddLiveAppRecordConfig,
        Action::UpdateLiveAppRecordConfig,
        Action::DeleteLiveAppRecordConfig,
        Action::DescribeLiveRecordConfig,
        Action::DescribeLiveStreamsOnlineList,
        Action::DescribeLiveStreamRecordIndexFiles,
        Action::DescribeLiveStreamRecordIndexFile,
        Action::DescribeLiveStreamRecordContent,
        Action::CreateLiveStreamRecordIndexFiles,
        Action::DeleteLiveStreamRecordIndexFiles,
        Action::AddLiveRecordNotifyConfig,
        Action::UpdateLiveRecordNotifyConfig,
        Action::DeleteLiveRecordNotifyConfig,
        Action::DescribeLiveRecordNotifyConfig,
        Action::DescribeLiveRecordNotifyRecords,
        Action::BatchSetLiveDomainConfigs,
        Action::DescribeLiveDomainConfigs,
        Action::BatchDeleteLiveDomainConfigs,
    ];

    /// The wire name (also the XML root `{name}Response`).
    pub fn name(self) -> &'static str {
        match self {
            Action::RealTimeRecordCommand => "RealTimeRecordCommand",
            Action::AddLiveAppRecordConfig => "AddLiveAppRecordConfig",
            Action::UpdateLiveAppRecordConfig => "UpdateLiveAppRecordConfig",
            Action::DeleteLiveAppRecordConfig => "DeleteLiveAppRecordConfig",
            Action::DescribeLiveRecordConfig => "DescribeLiveRecordConfig",
            Action::DescribeLiveStreamsOnlineList => "DescribeLiveStreamsOnlineList",
            Action::DescribeLiveStreamRecordIndexFiles => "DescribeLiveStreamRecordIndexFiles",
            Action::DescribeLiveStreamRecordIndexFile => "DescribeLiveStreamRecordIndexFile",
            Action::DescribeLiveStreamRecordContent => "DescribeLiveStreamRecordContent",
            Action::CreateLiveStreamRecordIndexFiles => "CreateLiveStreamRecordIndexFiles",
            Action::DeleteLiveStreamRecordIndexFiles => "DeleteLiveStreamRecordIndexFiles",
            Action::AddLiveRecordNotifyConfig => "AddLiveRecordNotifyConfig",
            Action::UpdateLiveRecordNotifyConfig => "UpdateLiveRecordNotifyConfig",
            Action::DeleteLiveRecordNotifyConfig => "DeleteLiveRecordNotifyConfig",
            Action::DescribeLiveRecordNotifyConfig => "DescribeLiveRecordNotifyConfig",
            Action::DescribeLiveRecordNotifyRecords => "DescribeLiveRecordNotifyRecords",
            Action::BatchSetLiveDomainConfigs => "BatchSetLiveDomainConfigs",
            Action::DescribeLiveDomainConfigs => "DescribeLiveDomainConfigs",
            Action::BatchDeleteLiveDomainConfigs => "BatchDeleteLiveDomainConfigs",
        }
    }

    /// Exact, case-sensitive match, as Alibaba's gateway does.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Every wire name, for the throttle.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|a| a.name()).collect()
    }
}

/// Parses the action's parameters and runs it.
pub async fn dispatch(
    action: Action,
    params: &Params,
    state: &ApiState,
) -> Result<Reply, ApiError> {
    match action {
        Action::RealTimeRecordCommand => {
            realtime_command::RealTimeRecordCommand::parse(params)?
                .handle(state)
                .await
        }
        Action::AddLiveAppRecordConfig => {
            record_config::AddLiveAppRecordConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::UpdateLiveAppRecordConfig => {
            record_config::UpdateLiveAppRecordConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DeleteLiveAppRecordConfig => {
            record_config::DeleteLiveAppRecordConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveRecordConfig => {
            record_config::DescribeLiveRecordConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveStreamsOnlineList => {
            streams::DescribeLiveStreamsOnlineList::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveStreamRecordIndexFiles => {
            record_index::DescribeLiveStreamRecordIndexFiles::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveStreamRecordIndexFile => {
            record_index::DescribeLiveStreamRecordIndexFile::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveStreamRecordContent => {
            record_index::DescribeLiveStreamRecordContent::parse(params)?
                .handle(state)
                .await
        }
        Action::CreateLiveStreamRecordIndexFiles => {
            record_index::CreateLiveStreamRecordIndexFiles::parse(params)?
                .handle(state)
                .await
        }
        Action::DeleteLiveStreamRecordIndexFiles => {
            record_index::DeleteLiveStreamRecordIndexFiles::parse(params)?
                .handle(state)
                .await
        }
        Action::AddLiveRecordNotifyConfig => {
            record_notify::AddLiveRecordNotifyConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::UpdateLiveRecordNotifyConfig => {
            record_notify::UpdateLiveRecordNotifyConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DeleteLiveRecordNotifyConfig => {
            record_notify::DeleteLiveRecordNotifyConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveRecordNotifyConfig => {
            record_notify::DescribeLiveRecordNotifyConfig::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveRecordNotifyRecords => {
            record_notify::DescribeLiveRecordNotifyRecords::parse(params)?
                .handle(state)
                .await
        }
        Action::BatchSetLiveDomainConfigs => {
            domain_config::BatchSetLiveDomainConfigs::parse(params)?
                .handle(state)
                .await
        }
        Action::DescribeLiveDomainConfigs => {
            domain_config::DescribeLiveDomainConfigs::parse(params)?
                .handle(state)
                .await
        }
        Action::BatchDeleteLiveDomainConfigs => {
            domain_config::BatchDeleteLiveDomainConfigs::parse(params)?
                .handle(state)
                .await
        }
    }
}

/// Parses `params` as `action`'s request without running it. The fuzz targets (fuzz/) use
/// it to reach every action's parameter parsing, which [`dispatch`] only reaches with a live
/// [`ApiState`].
#[doc(hidden)]
pub fn parse_only(action: Action, params: &Params) -> Result<(), ApiError> {
    match action {
        Action::RealTimeRecordCommand => {
            realtime_command::RealTimeRecordCommand::parse(params).map(drop)
        }
        Action::AddLiveAppRecordConfig => {
            record_config::AddLiveAppRecordConfig::parse(params).map(drop)
        }
        Action::UpdateLiveAppRecordConfig => {
            record_config::UpdateLiveAppRecordConfig::parse(params).map(drop)
        }
        Action::DeleteLiveAppRecordConfig => {
            record_config::DeleteLiveAppRecordConfig::parse(params).map(drop)
        }
        Action::DescribeLiveRecordConfig => {
            record_config::DescribeLiveRecordConfig::parse(params).map(drop)
        }
        Action::DescribeLiveStreamsOnlineList => {
            streams::DescribeLiveStreamsOnlineList::parse(params).map(drop)
        }
        Action::DescribeLiveStreamRecordIndexFiles => {
            record_index::DescribeLiveStreamRecordIndexFiles::parse(params).map(drop)
        }
        Action::DescribeLiveStreamRecordIndexFile => {
            record_index::DescribeLiveStreamRecordIndexFile::parse(params).map(drop)
        }
        Action::DescribeLiveStreamRecordContent => {
            record_index::DescribeLiveStreamRecordContent::parse(params).map(drop)
        }
        Action::CreateLiveStreamRecordIndexFiles => {
            record_index::CreateLiveStreamRecordIndexFiles::parse(params).map(drop)
        }
        Action::DeleteLiveStreamRecordIndexFiles => {
            record_index::DeleteLiveStreamRecordIndexFiles::parse(params).map(drop)
        }
        Action::AddLiveRecordNotifyConfig => {
            record_notify::AddLiveRecordNotifyConfig::parse(params).map(drop)
        }
        Action::UpdateLiveRecordNotifyConfig => {
            record_notify::UpdateLiveRecordNotifyConfig::parse(params).map(drop)
        }
        Action::DeleteLiveRecordNotifyConfig => {
            record_notify::DeleteLiveRecordNotifyConfig::parse(params).map(drop)
        }
        Action::DescribeLiveRecordNotifyConfig => {
            record_notify::DescribeLiveRecordNotifyConfig::parse(params).map(drop)
        }
        Action::DescribeLiveRecordNotifyRecords => {
            record_notify::DescribeLiveRecordNotifyRecords::parse(params).map(drop)
        }
        Action::BatchSetLiveDomainConfigs => {
            domain_config::BatchSetLiveDomainConfigs::parse(params).map(drop)
        }
        Action::DescribeLiveDomainConfigs => {
            domain_config::DescribeLiveDomainConfigs::parse(params).map(drop)
        }
        Action::BatchDeleteLiveDomainConfigs => {
            domain_config::BatchDeleteLiveDomainConfigs::parse(params).map(drop)
        }
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
