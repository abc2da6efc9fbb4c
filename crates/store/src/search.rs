//! Finding an org's images by part of their repository name, a page at a time.

use crate::{CARD_COLUMNS, Card, Result, Store};

impl Store {
    /// The active images marked with `org_slug` whose repository contains `text` (in any
    /// case; empty: all of them), by slug after `after`, at most `limit`.
    pub async fn images_matching(
        &self,
        org_slug: &str,
        text: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE split_part(type, '@', 1) = 'image' AND active \
             AND markers @> ARRAY[$1::text] \
             AND strpos(lower(data ->> 'repository'), lower($2)) > 0 \
             AND ($3::text IS NULL OR slug > $3) ORDER BY slug LIMIT $4"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(org_slug)
            .bind(text)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}
