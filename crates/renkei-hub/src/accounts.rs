//! The people around a resident's data, one module for each thing the hub keeps of them:
//! proxies (代理人) a resident appoints, the disclosure, correction, deletion and suspension
//! requests (開示・訂正・削除・利用停止) residents file, the service registry operators keep
//! (registering, approving and suspending services), the providers and the category vocabulary
//! they register, and the operators themselves.

mod operators;
mod providers;
mod proxies;
mod registry;
mod requests;

pub use operators::put_operator;
pub use providers::{CategoryRegistration, ProviderRegistration, ProviderRegistrationView};
pub(crate) use proxies::ProxyScopeSchema;
pub use proxies::{INVITATION_HOURS, ProxyAction, ProxyInvitation, ProxyInvitationBody};
pub(crate) use registry::{ControllerContactSchema, PostalAddressSchema};
pub use registry::{PurposeDeclaration, RegisteredService, ServiceRegistration};
pub use requests::ResidentRequestBody;

use crate::HubError;

fn malformed(e: impl std::fmt::Display) -> HubError {
    HubError::Malformed(e.to_string())
}
