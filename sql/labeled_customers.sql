-- `churnops ingest --source sql`: the customers whose churn label has arrived, in the
-- snapshot's column names (src/churnops/schema.py) plus label_arrived_at. Ingest runs it
-- as a subquery and keeps the rows whose label arrived after data/'s newest snapshot and
-- before the new snapshot's date, so each label is ingested exactly once.
--
-- The tables: `customers` holds each customer's features as they were when the model
-- scored them (predicted_on); `churn_labels` gets a row weeks later, when the outcome is
-- known (label_arrived_at: when the row landed, not when the customer left). Adapt the
-- names to your warehouse; keep the output columns.
SELECT
    c.customer_id,
    c.female,
    c.senior_citizen,
    c.partner,
    c.dependents,
    c.tenure,
    c.phone_service,
    c.multiple_lines,
    c.internet_service,
    c.online_security,
    c.online_backup,
    c.device_protection,
    c.tech_support,
    c.streaming_tv,
    c.streaming_movies,
    c.contract,
    c.paperless_billing,
    c.payment_method,
    c.monthly_charges,
    c.total_charges,
    CASE WHEN l.churned THEN 'Yes' WHEN NOT l.churned THEN 'No' END AS churn,
    l.label_arrived_at
FROM customers AS c
JOIN churn_labels AS l ON l.customer_id = c.customer_id
