using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Retention : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "DetailsExpiredAt",
                table: "customer_history",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "job_leases",
                columns: table => new
                {
                    Name = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    Owner = table.Column<string>(type: "TEXT", maxLength: 64, nullable: true),
                    Until = table.Column<long>(type: "INTEGER", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_job_leases", x => x.Name);
                });

            migrationBuilder.InsertData(
                table: "job_leases",
                columns: new[] { "Name", "Owner", "Until" },
                values: new object[] { "retention-sweep", null, null });

            migrationBuilder.CreateIndex(
                name: "IX_orders_UpdatedAt",
                table: "orders",
                column: "UpdatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_finished_CompletedAt",
                table: "deliveries",
                column: "CompletedAt",
                filter: "\"CompletedAt\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_customer_history_DeliveryId",
                table: "customer_history",
                column: "DeliveryId",
                filter: "\"DeliveryId\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "job_leases");

            migrationBuilder.DropIndex(
                name: "IX_orders_UpdatedAt",
                table: "orders");

            migrationBuilder.DropIndex(
                name: "IX_deliveries_finished_CompletedAt",
                table: "deliveries");

            migrationBuilder.DropIndex(
                name: "IX_customer_history_DeliveryId",
                table: "customer_history");

            migrationBuilder.DropColumn(
                name: "DetailsExpiredAt",
                table: "customer_history");
        }
    }
}
