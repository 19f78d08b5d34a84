//! ひかり台市 (Hikaridai City), a fictional town: its residents and what each data provider
//! holds about them. Deterministic from a seed, so every run of the demo is the same town.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use renkei_domain::ResidentId;
use serde_json::{Map, Value, json};

const SURNAMES: &[&str] = &[
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "林",
    "斎藤",
    "清水",
    "山崎",
    "森",
    "池田",
    "橋本",
    "阿部",
    "石川",
    "山下",
    "中島",
    "石井",
    "小川",
    "前田",
    "岡田",
    "長谷川",
    "藤田",
    "後藤",
    "近藤",
    "村上",
    "遠藤",
    "青木",
    "坂本",
];
const GIVEN_FEMALE: &[&str] = &[
    "陽子",
    "恵子",
    "美咲",
    "さくら",
    "花子",
    "由美",
    "結衣",
    "真由美",
    "千尋",
    "葵",
    "久美子",
    "明美",
    "美穂",
    "彩",
    "愛",
    "智子",
    "幸子",
    "和子",
    "陽菜",
    "凛",
];
const GIVEN_MALE: &[&str] = &[
    "大輔", "翔太", "健一", "拓也", "誠", "浩", "隆", "蓮", "悠真", "湊", "一郎", "茂", "博", "勇",
    "直樹", "和也", "修", "聡", "陽翔", "大和",
];
const CHOME: &[&str] = &[
    "桜町",
    "緑が丘",
    "本町",
    "港町",
    "若葉",
    "旭町",
    "松風",
    "泉台",
    "光が丘",
    "北野",
];

/// Who the town's people are, as the city registry (住民基本台帳) knows them.
#[derive(Debug, Clone)]
pub struct Person {
    pub resident: ResidentId,
    pub name: String,
    pub address: String,
    pub birth_date: NaiveDate,
    pub sex: &'static str,
    /// On the evacuation-support register (避難行動要支援者名簿).
    pub evacuation_support: Option<Value>,
    pub has_clinic_record: bool,
    pub has_payment_record: bool,
}

impl Person {
    pub fn registry_ref(&self, i: usize) -> String {
        format!("REG-{:06}", i + 1)
    }
    pub fn clinic_ref(&self, i: usize) -> String {
        format!("PT-{:05}", 20_000 + i)
    }
    pub fn payment_ref(&self, i: usize) -> String {
        format!("HP-{:08}", 31_000_000 + i * 7)
    }

    /// Where they live, as a half mesh (2分の1地域メッシュ, JIS X 0410): each 丁目 name is a
    /// 1 km mesh of its own inside 533945, and the half within it follows `i`. Derived, not
    /// drawn, so the town's residents stay the same.
    pub fn mesh(&self, i: usize) -> String {
        let k = CHOME
            .iter()
            .position(|c| self.address.contains(c))
            .unwrap_or_default();
        format!("533945{}{}{}", 2 + k / 5, 5 + k % 5, 1 + i % 4)
    }
}

/// One of `list`, drawn by `rng` as indexing with `random_range(0..len)` would (the town's
/// residents depend on the draws staying the same); an empty list gives "".
fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    if list.is_empty() {
        return "";
    }
    list.get(rng.random_range(0..list.len()))
        .copied()
        .unwrap_or_default()
}

/// The town's residents, the same for the same seed.
pub fn people(count: usize, seed: u64) -> Vec<Person> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut id = [0u8; 16];
            rng.fill(&mut id);
            let resident = ResidentId::from_uuid(uuid::Builder::from_random_bytes(id).into_uuid());
            let female = rng.random_bool(0.51);
            let surname = pick(&mut rng, SURNAMES);
            let given = if female {
                pick(&mut rng, GIVEN_FEMALE)
            } else {
                pick(&mut rng, GIVEN_MALE)
            };
            let age = rng.random_range(0..100);
            let birth_date = NaiveDate::from_ymd_opt(2026 - age, rng.random_range(1..=12), rng.random_range(1..=28))
                .unwrap_or_default();
            let address = format!(
                "ひかり台市{}{}丁目{}番{}号",
                pick(&mut rng, CHOME),
                rng.random_range(1..=5),
                rng.random_range(1..=30),
                rng.random_range(1..=20)
            );
            let needs_support = (age >= 75 && rng.random_bool(0.4)) || rng.random_bool(0.03);
            let evacuation_support = needs_support.then(|| {
                json!({
                    "reason": if age >= 75 { "高齢者のみの世帯" } else { "身体障害者手帳 2級" },
                    "care_level": if age >= 75 { format!("要介護{}", rng.random_range(1..=5)) } else { "なし".into() },
                    "contact": format!("{}（家族）", pick(&mut rng, SURNAMES)),
                    "assistance": "避難時に車いす介助が必要",
                })
            });
            Person {
                resident,
                name: format!("{surname} {given}"),
                address,
                birth_date,
                sex: if female { "女" } else { "男" },
                evacuation_support,
                has_clinic_record: rng.random_bool(0.6),
                has_payment_record: rng.random_bool(0.7),
            }
        })
        .collect()
}

/// The city registry's records: reference → category → value.
pub fn registry_records(people: &[Person]) -> HashMap<String, Map<String, Value>> {
    people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = Map::new();
            m.insert("resident.name".into(), json!(p.name));
            m.insert("resident.address".into(), json!(p.address));
            m.insert(
                "resident.birth_date".into(),
                json!(p.birth_date.to_string()),
            );
            m.insert("resident.sex".into(), json!(p.sex));
            if let Some(e) = &p.evacuation_support {
                // The register keeps where each entry lives, for area lists.
                let mut entry = e.clone();
                if let Value::Object(fields) = &mut entry {
                    fields.insert("mesh".into(), json!(p.mesh(i)));
                }
                m.insert("evacuation.support".into(), entry);
            }
            (p.registry_ref(i), m)
        })
        .collect()
}

/// The clinic's health-check results (特定健診).
pub fn clinic_records(people: &[Person], seed: u64) -> HashMap<String, Map<String, Value>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC11C);
    people
        .iter()
        .enumerate()
        .filter(|(_, p)| p.has_clinic_record)
        .map(|(i, p)| {
            let mut m = Map::new();
            m.insert(
                "health.checkup".into(),
                json!({
                    "date": format!("2026-{:02}-{:02}", rng.random_range(4..=10), rng.random_range(1..=28)),
                    "height_cm": rng.random_range(145..185),
                    "weight_kg": rng.random_range(40..95),
                    "systolic_mmHg": rng.random_range(100..170),
                    "hba1c_percent": f64::from(rng.random_range(48..75)) / 10.0,
                    "age_at_checkup": 2026 - p.birth_date.year(),
                }),
            );
            (p.clinic_ref(i), m)
        })
        .collect()
}

/// The payment provider's recent purchases.
pub fn payment_records(people: &[Person], seed: u64) -> HashMap<String, Map<String, Value>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBA7);
    let shops = [
        "ひかり台スーパー",
        "ドラッグストアみなと",
        "ひかり台駅売店",
        "青空ベーカリー",
        "コミュニティバス",
    ];
    people
        .iter()
        .enumerate()
        .filter(|(_, p)| p.has_payment_record)
        .map(|(i, p)| {
            let purchases: Vec<Value> = (0..rng.random_range(2..6))
                .map(|_| {
                    json!({
                        "date": format!("2026-11-{:02}", rng.random_range(1..=22)),
                        "shop": pick(&mut rng, &shops),
                        "amount_jpy": rng.random_range(150..8000),
                    })
                })
                .collect();
            let mut m = Map::new();
            m.insert("payment.history".into(), json!(purchases));
            (p.payment_ref(i), m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_town() {
        let a = people(50, 7);
        let b = people(50, 7);
        assert_eq!(
            a.iter().map(|p| p.resident).collect::<Vec<_>>(),
            b.iter().map(|p| p.resident).collect::<Vec<_>>()
        );
        assert_eq!(a[3].name, b[3].name);
    }

    #[test]
    fn every_resident_is_in_the_registry_and_some_need_evacuation_support() {
        let town = people(1000, 1);
        let registry = registry_records(&town);
        assert_eq!(registry.len(), 1000);
        let supported = town
            .iter()
            .filter(|p| p.evacuation_support.is_some())
            .count();
        assert!((20..300).contains(&supported), "{supported}");
    }

    #[test]
    fn every_register_entry_lies_in_a_half_mesh_inside_the_town() {
        let town = people(200, 1);
        let registry = registry_records(&town);
        for (i, p) in town.iter().enumerate() {
            let mesh = renkei_domain::emergency::MeshCode::parse(&p.mesh(i)).unwrap();
            assert_eq!(mesh.level(), renkei_domain::emergency::MeshLevel::Half);
            assert!(mesh.as_str().starts_with("533945"));
            if p.evacuation_support.is_some() {
                let entry = &registry[&p.registry_ref(i)]["evacuation.support"];
                assert_eq!(entry["mesh"], p.mesh(i).as_str());
            }
        }
    }
}
