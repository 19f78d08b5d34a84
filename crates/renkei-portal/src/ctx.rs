//! What every page's layout needs: language, translator, CSRF token, the language-switch
//! links that keep the current page, and the navigation of its area.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::PortalError;
use crate::i18n::{Lang, Tr};
use crate::security::RequestContext;
use crate::session::ResidentSession;
use renkei_hub::auth::ProxyPermission;

/// One navigation link.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// The layout's context, extracted from every page request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub t: Tr,
    pub lang: Lang,
    pub csrf: String,
    pub href_ja: String,
    pub href_en: String,
    pub is_ja: bool,
    /// The page's title (set by the handler).
    pub title: String,
    pub nav: Vec<NavItem>,
    /// Where the sign-out button posts, when someone is signed in.
    pub sign_out: Option<&'static str>,
    /// `portal` or `console`: the header says which.
    pub area: &'static str,
    /// Set while a proxy acts for a resident: that resident's name, said on every page.
    pub acting_for: Option<String>,
}

impl Ctx {
    /// Sets the title and the resident portal's navigation (`current` is the active href).
    pub fn portal(mut self, title_id: &str, current: &str, signed_in: bool) -> Self {
        self.title = self.t.get(title_id);
        self.area = "portal";
        if signed_in {
            self.sign_out = Some("/portal/sign-out");
            self.nav = [
                ("/portal", "nav-home"),
                ("/portal/services", "nav-services"),
                ("/portal/history", "nav-history"),
                ("/portal/notices", "nav-notices"),
                ("/portal/passkeys", "nav-passkeys"),
                ("/portal/requests", "nav-requests"),
                ("/portal/proxies", "nav-proxies"),
                ("/portal/provider-codes", "nav-provider-codes"),
            ]
            .into_iter()
            .map(|(href, id)| NavItem {
                href,
                label: self.t.get(id),
                current: href == current,
            })
            .collect();
        }
        self
    }

    /// [`Ctx::portal`] for a signed-in session: a proxy sees only the pages of what the
    /// resident entrusted to them, and every page says for whom they act.
    pub fn portal_for(self, title_id: &str, current: &str, me: &ResidentSession) -> Self {
        let mut ctx = self.portal(title_id, current, true);
        let may = |p| me.hub.require(p, None).is_ok();
        ctx.nav.retain(|item| match item.href {
            "/portal/services" => may(ProxyPermission::ViewConsents),
            "/portal/history" | "/portal/notices" => may(ProxyPermission::ViewHistory),
            "/portal/requests" => may(ProxyPermission::FileRequests),
            "/portal/proxies" | "/portal/provider-codes" => may(ProxyPermission::ManageAccount),
            _ => true,
        });
        ctx.acting_for = me.acting_for.clone();
        ctx
    }

    /// Sets the title and the operator console's navigation.
    pub fn console(mut self, title_id: &str, current: &str, signed_in: bool) -> Self {
        self.title = self.t.get(title_id);
        self.area = "console";
        if signed_in {
            self.sign_out = Some("/console/sign-out");
            self.nav = [
                ("/console", "nav-console-services"),
                ("/console/providers", "nav-console-providers"),
                ("/console/categories", "nav-console-categories"),
                ("/console/declarations", "nav-console-declarations"),
                ("/console/requests", "nav-console-requests"),
                (
                    "/console/location-deletions",
                    "nav-console-location-deletions",
                ),
                ("/console/audit", "nav-console-audit"),
                ("/console/counter", "nav-console-counter"),
                ("/console/representatives", "nav-console-representatives"),
            ]
            .into_iter()
            .map(|(href, id)| NavItem {
                href,
                label: self.t.get(id),
                current: href == current,
            })
            .collect();
        }
        self
    }
}

impl Ctx {
    /// Sets the title and the navigation of counter staff, who have the counter alone.
    pub fn counter_desk(mut self, title_id: &str) -> Self {
        self.title = self.t.get(title_id);
        self.area = "console";
        self.sign_out = Some("/console/sign-out");
        self.nav = vec![NavItem {
            href: "/console/counter",
            label: self.t.get("nav-console-counter"),
            current: true,
        }];
        self
    }
}

/// The current URL with `lang` set to `code` (other query parameters kept).
fn switch_href(path: &str, query: Option<&str>, code: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "lang" && k != "done")
        .collect();
    pairs.push(("lang".into(), code.into()));
    let q = serde_urlencoded::to_string(&pairs).unwrap_or_else(|_| format!("lang={code}"));
    format!("{path}?{q}")
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PortalError> {
        let rc = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| PortalError::Internal("the portal middleware did not run".into()))?;
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query();
        Ok(Self {
            t: Tr::new(rc.lang),
            lang: rc.lang,
            csrf: rc.csrf,
            href_ja: switch_href(&path, query, "ja"),
            href_en: switch_href(&path, query, "en"),
            is_ja: rc.lang == Lang::Ja,
            title: String::new(),
            nav: Vec::new(),
            sign_out: None,
            area: "portal",
            acting_for: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_keeps_the_page_and_its_filters() {
        assert_eq!(
            switch_href("/portal/history", Some("service=bus&lang=ja"), "en"),
            "/portal/history?service=bus&lang=en"
        );
        assert_eq!(switch_href("/portal", None, "ja"), "/portal?lang=ja");
    }
}
