//! The counter receipt as a printed page: one A4 PDF page with what staff did (in Japanese
//! and English), a QR code carrying the receipt check page's address with the signed
//! receipt in it, and the receipt itself in small type.
//!
//! Written by hand with `pdf-writer`, uncompressed: the page names a font every PDF reader
//! in Japan has, Adobe-Japan1's 小塚明朝 (`KozMinPr6N-Regular`, not embedded) through the
//! `UniJIS-UCS2-HW-H` CMap (Latin letters and digits half-width), so Japanese text needs no
//! font file and the hub ships none; text is written as UCS-2, wrapped to the page by a
//! width of one em for a full-width character and half an em for a half-width one, and the
//! receipt in Courier. The QR code is drawn as filled squares, one
//! per dark module, so nothing but the PDF operators is needed to show it.

use pdf_writer::types::{CidFontType, FontFlags};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use qrcode::{Color, EcLevel, QrCode};
use renkei_domain::{CounterVerification, IdentityDocument, ResidentRequestKind};
use renkei_protocol::receipt::counter::{CounterAct, CounterReceipt};

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 50.0;
/// The QR code's side, in points (with its four-module quiet zone).
const QR_SIDE: f32 = 220.0;
/// Characters of the receipt per line of Courier at [`JWS_SIZE`].
const JWS_LINE: usize = 100;
const JWS_SIZE: f32 = 7.0;
/// The size of a line's value, in points.
const VALUE_SIZE: f32 = 12.0;
/// Adobe-Japan1's half-width CIDs (where `UniJIS-UCS2-HW-H` maps ASCII), half an em wide.
const HALF_WIDTH_CIDS: (u16, u16) = (231, 632);

/// Why the page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the receipt does not fit in a qr code: {0}")]
    Qr(#[from] qrcode::types::QrError),
}

/// What the page says: a title, then label and value pairs, each label in both languages.
#[derive(Debug, Clone, Default)]
pub struct ReceiptSheet {
    pub title: String,
    pub lines: Vec<(String, String)>,
    /// What the QR code carries: the check page's address with the receipt in it.
    pub check_url: String,
    /// The signed receipt (a compact JWS), printed too and kept as the document's subject.
    pub jws: String,
}

/// The page's lines for a counter receipt: labels in Japanese and English, values as the
/// receipt says them (times in Japan's), `staff_name` beside the staff member's id.
pub fn receipt_lines(r: &CounterReceipt, staff_name: &str) -> Vec<(String, String)> {
    let jst = chrono::FixedOffset::east_opt(9 * 3600);
    let when = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .zip(jst)
            .map(|(t, jst)| {
                t.with_timezone(&jst)
                    .format("%Y-%m-%d %H:%M JST")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let staff = if staff_name.is_empty() {
        r.staff.to_string()
    } else {
        format!("{staff_name} ({})", r.staff)
    };
    let verified = match r.verified {
        CounterVerification::Card => {
            "マイナンバーカード（読取） / card certificate read at the kiosk".to_owned()
        }
        CounterVerification::InPerson { document } => {
            let (ja, en) = match document {
                IdentityDocument::MyNumberCard => ("マイナンバーカード", "My Number card"),
                IdentityDocument::DriversLicence => ("運転免許証", "driver's licence"),
                IdentityDocument::Passport => ("旅券", "passport"),
                IdentityDocument::ResidenceCard => ("在留カード", "residence card"),
                IdentityDocument::DisabilityCertificate => ("障害者手帳", "disability certificate"),
            };
            format!("{ja}（目視） / {en}, seen by staff")
        }
    };
    let mut lines = vec![
        ("受付日時 / Issued".to_owned(), when(r.iat)),
        ("受付職員 / Staff".to_owned(), staff),
        ("本人確認 / Identity checked by".to_owned(), verified),
    ];
    match &r.act {
        CounterAct::ConsentGiven {
            service,
            purpose,
            version,
            categories,
            expires,
            consent,
        } => {
            lines.push((
                "手続 / What was done".into(),
                format!("同意 / Consent given: {service} / {purpose} (v{version})"),
            ));
            let categories: Vec<String> = categories.iter().map(ToString::to_string).collect();
            lines.push(("対象の情報 / Data".into(), categories.join(", ")));
            if let Some(expires) = expires {
                lines.push(("有効期限 / Valid until".into(), when(*expires)));
            }
            lines.push(("同意番号 / Consent".into(), consent.to_string()));
        }
        CounterAct::ConsentRevoked {
            service,
            purpose,
            version,
            consent,
        } => {
            lines.push((
                "手続 / What was done".into(),
                format!("同意の撤回 / Consent revoked: {service} / {purpose} (v{version})"),
            ));
            lines.push(("同意番号 / Consent".into(), consent.to_string()));
        }
        CounterAct::RequestFiled {
            request,
            request_kind,
            service,
        } => {
            let (ja, en) = match request_kind {
                ResidentRequestKind::Disclosure => ("開示請求", "disclosure request"),
                ResidentRequestKind::Correction => ("訂正請求", "correction request"),
                ResidentRequestKind::Deletion => ("削除請求", "deletion request"),
                ResidentRequestKind::Suspension => ("利用停止請求", "suspension request"),
            };
            let about = service
                .as_ref()
                .map_or_else(|| "連携基盤 / the hub".to_owned(), ToString::to_string);
            lines.push((
                "手続 / What was done".into(),
                format!("{ja} / {en}: {about}"),
            ));
            lines.push(("請求番号 / Request".into(), request.to_string()));
        }
    }
    lines.push(("受付番号 / Receipt".into(), r.jti.to_string()));
    lines.push((
        "確認方法 / How to check".into(),
        "QRコードをスマートフォンで読み取ってください / scan the QR code with any phone".into(),
    ));
    lines
}

/// Whether `UniJIS-UCS2-HW-H` shows `c` half-width: ASCII and half-width katakana.
fn half_width(c: char) -> bool {
    c.is_ascii() || ('\u{ff61}'..='\u{ff9f}').contains(&c)
}

/// `text` in lines at most `ems` wide (a full-width character one em, a half-width one half).
fn wrap(text: &str, ems: f32) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut width = 0.0;
    for c in text.chars() {
        let w = if half_width(c) { 0.5 } else { 1.0 };
        if width + w > ems {
            lines.push(String::new());
            width = 0.0;
        }
        if let Some(line) = lines.last_mut() {
            line.push(c);
        }
        width += w;
    }
    lines
}

/// UCS-2 big-endian, what `UniJIS-UCS2-HW-H` reads; a character outside the Basic
/// Multilingual Plane becomes 〓 (the geta mark, JIS's sign for a missing character).
fn ucs2(text: &str) -> Vec<u8> {
    text.chars()
        .flat_map(|c| {
            let unit = u16::try_from(u32::from(c)).unwrap_or(0x3013);
            unit.to_be_bytes()
        })
        .collect()
}

/// The page's PDF bytes.
pub fn render(sheet: &ReceiptSheet) -> Result<Vec<u8>, PdfError> {
    let qr = QrCode::with_error_correction_level(sheet.check_url.as_bytes(), EcLevel::L)?;

    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let page_id = Ref::new(3);
    let content_id = Ref::new(4);
    let japanese_id = Ref::new(5);
    let cid_id = Ref::new(6);
    let descriptor_id = Ref::new(7);
    let courier_id = Ref::new(8);
    let info_id = Ref::new(9);
    let japanese = Name(b"F1");
    let courier = Name(b"F2");

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
    page.parent(tree_id);
    page.contents(content_id);
    let mut resources = page.resources();
    let mut fonts = resources.fonts();
    fonts.pair(japanese, japanese_id);
    fonts.pair(courier, courier_id);
    fonts.finish();
    resources.finish();
    page.finish();

    pdf.type0_font(japanese_id)
        .base_font(Name(b"KozMinPr6N-Regular-UniJIS-UCS2-HW-H"))
        .encoding_predefined(Name(b"UniJIS-UCS2-HW-H"))
        .descendant_font(cid_id);
    {
        let mut cid = pdf.cid_font(cid_id);
        cid.subtype(CidFontType::Type0)
            .base_font(Name(b"KozMinPr6N-Regular"))
            .system_info(pdf_writer::types::SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"Japan1"),
                supplement: 6,
            })
            .font_descriptor(descriptor_id)
            .default_width(1000.0);
        cid.widths()
            .same(HALF_WIDTH_CIDS.0, HALF_WIDTH_CIDS.1, 500.0);
    }
    pdf.font_descriptor(descriptor_id)
        .name(Name(b"KozMinPr6N-Regular"))
        .flags(FontFlags::SERIF | FontFlags::SYMBOLIC)
        .bbox(Rect::new(-437.0, -340.0, 1144.0, 1317.0))
        .italic_angle(0.0)
        .ascent(880.0)
        .descent(-120.0)
        .cap_height(742.0)
        .stem_v(80.0);
    pdf.type1_font(courier_id).base_font(Name(b"Courier"));
    pdf.document_info(info_id)
        .title(TextStr(&sheet.title))
        .subject(TextStr(&sheet.jws))
        .creator(TextStr("Renkei"));

    let mut content = Content::new();
    let mut y = PAGE.1 - MARGIN - 16.0;
    content.begin_text();
    content.set_font(japanese, 16.0);
    content.next_line(MARGIN, y);
    content.show(Str(&ucs2(&sheet.title)));
    content.end_text();
    y -= 34.0;
    for (label, value) in &sheet.lines {
        content.begin_text();
        content.set_font(japanese, 9.0);
        content.next_line(MARGIN, y);
        content.show(Str(&ucs2(label)));
        content.end_text();
        y -= 15.0;
        let ems = (PAGE.0 - 2.0 * MARGIN - 12.0) / VALUE_SIZE;
        for line in wrap(value, ems) {
            content.begin_text();
            content.set_font(japanese, VALUE_SIZE);
            content.next_line(MARGIN + 12.0, y);
            content.show(Str(&ucs2(&line)));
            content.end_text();
            y -= VALUE_SIZE + 4.0;
        }
        y -= 6.0;
    }

    // The QR code, with its quiet zone of four modules (ISO/IEC 18004), black on white.
    let width = qr.width();
    let modules = width + 8;
    #[expect(
        clippy::cast_precision_loss,
        reason = "a QR code is at most 177 modules wide"
    )]
    let module = QR_SIDE / modules as f32;
    let (left, bottom) = (MARGIN, y - QR_SIDE);
    content.set_fill_gray(0.0);
    for (i, color) in qr.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (row, col) = (i / width, i % width);
            #[expect(
                clippy::cast_precision_loss,
                reason = "module coordinates are below 177"
            )]
            let (x, top) = (
                left + (col + 4) as f32 * module,
                bottom + QR_SIDE - (row + 4) as f32 * module,
            );
            content.rect(x, top - module, module, module);
        }
    }
    content.fill_nonzero();
    y = bottom - 20.0;

    // The receipt itself, for whoever cannot scan: the check page also takes it pasted.
    let jws: Vec<char> = sheet.jws.chars().collect();
    for chunk in jws.chunks(JWS_LINE) {
        let line: String = chunk.iter().collect();
        content.begin_text();
        content.set_font(courier, JWS_SIZE);
        content.next_line(MARGIN, y);
        content.show(Str(line.as_bytes()));
        content.end_text();
        y -= JWS_SIZE + 2.0;
    }
    pdf.stream(content_id, &content.finish());
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_page_is_a_pdf_naming_its_japanese_font_and_holding_the_receipt() {
        let jws = format!("eyJhbGciOiJFZERTQSJ9.{}.sig", "a".repeat(300));
        let pdf = render(&ReceiptSheet {
            title: "窓口受付票 Counter receipt".into(),
            lines: vec![("職員 Staff".into(), "sato".into())],
            check_url: format!("https://hub.example.jp/portal/receipts/check?receipt={jws}"),
            jws: jws.clone(),
        })
        .unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/KozMinPr6N-Regular"));
        assert!(text.contains("/UniJIS-UCS2-HW-H"));
        assert!(text.contains(&jws), "the receipt is the document's subject");
        assert!(text.contains(" re"), "the QR code's modules are drawn");
        assert!(text.trim_end().ends_with("%%EOF"));
    }

    #[test]
    fn long_values_wrap_by_their_width_in_ems() {
        assert_eq!(wrap("abcd", 1.0), vec!["ab", "cd"]);
        assert_eq!(wrap("窓口a", 2.0), vec!["窓口", "a"]);
        assert_eq!(wrap("", 3.0), vec![""]);
    }

    #[test]
    fn text_is_written_as_ucs2_with_a_geta_mark_beyond_the_bmp() {
        assert_eq!(ucs2("A窓"), vec![0x00, 0x41, 0x7a, 0x93]);
        assert_eq!(ucs2("𠮷"), vec![0x30, 0x13]);
    }
}
